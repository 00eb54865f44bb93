//go:build !unix

package private

// RestrictUmask does nothing where there is no umask; the explicit modes of MkdirAll, File and
// Tighten are what there is.
func RestrictUmask() {}
