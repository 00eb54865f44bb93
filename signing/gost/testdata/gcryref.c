/* gcryref: libgcrypt as the other side of signing/gost's cross-implementation tests.
 * Built by the Go test with gcc against libgcrypt (Debian libgcrypt20-dev). Reads commands,
 * one a line, on stdin, and answers one line each on stdout:
 *
 *   hash PATH                      -> GOSTR3411_94 STRIBOG256 STRIBOG512 of the file, hex
 *   sign CURVE QX QY D ALPHA       -> R S            (all numbers hex, big-endian)
 *   verify CURVE QX QY ALPHA R S   -> ok | bad
 *   params CURVE                   -> P A B N G H    (libgcrypt's own tables; G is 04||X||Y)
 *
 * CURVE is a libgcrypt curve name; QX and QY are fixed-width hex coordinates; ALPHA is the
 * digest as an integer, which libgcrypt's GOST signature ((flags gost)) reduces mod q itself.
 */
#include <gcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gcry_mpi_t hexmpi(const char *s) {
	gcry_mpi_t m = NULL;
	if (gcry_mpi_scan(&m, GCRYMPI_FMT_HEX, s, 0, NULL)) { printf("error bad number %s\n", s); return NULL; }
	return m;
}

/* point returns the octet string 04||X||Y of fixed-width hex coordinates. */
static unsigned char *point(const char *qx, const char *qy, size_t *n) {
	size_t lx = strlen(qx), ly = strlen(qy);
	unsigned char *b = malloc(1 + (lx + ly) / 2);
	b[0] = 4;
	for (size_t i = 0; i < lx / 2; i++) sscanf(qx + 2 * i, "%2hhx", &b[1 + i]);
	for (size_t i = 0; i < ly / 2; i++) sscanf(qy + 2 * i, "%2hhx", &b[1 + lx / 2 + i]);
	*n = 1 + (lx + ly) / 2;
	return b;
}

static void printmpi(gcry_sexp_t sig, const char *name) {
	gcry_sexp_t t = gcry_sexp_find_token(sig, name, 0);
	gcry_mpi_t m = gcry_sexp_nth_mpi(t, 1, GCRYMPI_FMT_USG);
	unsigned char *hex;
	gcry_mpi_aprint(GCRYMPI_FMT_HEX, &hex, NULL, m);
	printf("%s", hex);
	gcry_free(hex);
	gcry_mpi_release(m);
	gcry_sexp_release(t);
}

int main(void) {
	if (!gcry_check_version(NULL)) return 2;
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	char line[8192], a[6][1100];
	while (fgets(line, sizeof line, stdin)) {
		char cmd[16];
		if (sscanf(line, "%15s", cmd) != 1) continue;
		if (!strcmp(cmd, "hash")) {
			char path[4096];
			if (sscanf(line, "hash %4095s", path) != 1) { printf("error usage\n"); continue; }
			FILE *f = fopen(path, "rb");
			if (!f) { printf("error open %s\n", path); continue; }
			size_t cap = 1 << 16, len = 0, k;
			unsigned char *buf = malloc(cap);
			while ((k = fread(buf + len, 1, cap - len, f)) > 0) {
				len += k;
				if (len == cap) buf = realloc(buf, cap *= 2);
			}
			fclose(f);
			int algos[] = {GCRY_MD_GOSTR3411_94, GCRY_MD_STRIBOG256, GCRY_MD_STRIBOG512};
			for (int i = 0; i < 3; i++) {
				unsigned char out[64];
				gcry_md_hash_buffer(algos[i], out, buf, len);
				for (unsigned j = 0; j < gcry_md_get_algo_dlen(algos[i]); j++) printf("%02x", out[j]);
				printf(i < 2 ? " " : "\n");
			}
			free(buf);
		} else if (!strcmp(cmd, "sign") || !strcmp(cmd, "verify")) {
			char curve[64];
			if (sscanf(line, "%*s %63s %1099s %1099s %1099s %1099s %1099s", curve, a[0], a[1], a[2], a[3], a[4]) < 5) {
				printf("error usage\n");
				continue;
			}
			size_t qn;
			unsigned char *q = point(a[0], a[1], &qn);
			gcry_sexp_t key = NULL, data = NULL, sig = NULL;
			gcry_error_t err;
			if (!strcmp(cmd, "sign")) {
				gcry_mpi_t d = hexmpi(a[2]), alpha = hexmpi(a[3]);
				gcry_sexp_build(&key, NULL, "(private-key (ecc (curve %s) (q %b) (d %m)))", curve, (int)qn, q, d);
				gcry_sexp_build(&data, NULL, "(data (flags gost) (value %m))", alpha);
				err = gcry_pk_sign(&sig, data, key);
				if (err) printf("error sign %s\n", gcry_strerror(err));
				else { printmpi(sig, "r"); printf(" "); printmpi(sig, "s"); printf("\n"); }
				gcry_mpi_release(d);
				gcry_mpi_release(alpha);
			} else {
				gcry_mpi_t alpha = hexmpi(a[2]), r = hexmpi(a[3]), s = hexmpi(a[4]);
				gcry_sexp_build(&key, NULL, "(public-key (ecc (curve %s) (q %b)))", curve, (int)qn, q);
				gcry_sexp_build(&data, NULL, "(data (flags gost) (value %m))", alpha);
				gcry_sexp_build(&sig, NULL, "(sig-val (gost (r %m) (s %m)))", r, s);
				err = gcry_pk_verify(sig, data, key);
				printf("%s\n", err ? "bad" : "ok");
				gcry_mpi_release(alpha);
				gcry_mpi_release(r);
				gcry_mpi_release(s);
			}
			gcry_sexp_release(key);
			gcry_sexp_release(data);
			gcry_sexp_release(sig);
			free(q);
		} else if (!strcmp(cmd, "params")) {
			char curve[64];
			if (sscanf(line, "params %63s", curve) != 1) { printf("error usage\n"); continue; }
			gcry_sexp_t p = gcry_pk_get_param(GCRY_PK_ECC, curve);
			if (!p) { printf("error unknown curve %s\n", curve); continue; }
			const char *names[] = {"p", "a", "b", "n", "g"};
			for (int i = 0; i < 5; i++) { printmpi(p, names[i]); printf(" "); }
			gcry_sexp_t h = gcry_sexp_find_token(p, "h", 0);
			const char *hv = gcry_sexp_nth_data(h, 1, &(size_t){0});
			printf("%c\n", hv ? hv[0] : '?');
			gcry_sexp_release(h);
			gcry_sexp_release(p);
		} else {
			printf("error unknown command %s\n", cmd);
		}
		fflush(stdout);
	}
	return 0;
}
