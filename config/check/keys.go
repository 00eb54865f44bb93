package check

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// schema is the set of keys a file may hold, taken from the struct tags of the type the file is
// decoded into, so that it follows the code: a key added to a struct is known here at once.
type schema struct {
	fields map[string]*schema // a struct's keys (a nil value is a scalar); nil for a map or a list
	elem   *schema            // the values of a map or the items of a list, when they have keys
	fold   bool               // keys match whatever their case (mapstructure, as viper uses it)
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf builds the schema of t from its tag (mapstructure or yaml). It is nil for a type
// without keys of its own: a scalar, or a list or map of scalars.
func schemaOf(t reflect.Type, tag string, fold bool) *schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			return nil
		}
		s := &schema{fields: map[string]*schema{}, fold: fold}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get(tag), ",")
			if name == "-" {
				continue
			}
			if strings.Contains(opts, "squash") || strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
				if sub := schemaOf(f.Type, tag, fold); sub != nil {
					maps.Copy(s.fields, sub.fields)
				}
				continue
			}
			if name == "" {
				name = f.Name
			}
			if fold || tag == "yaml" && name == f.Name {
				name = strings.ToLower(name)
			}
			s.fields[name] = schemaOf(f.Type, tag, fold)
		}
		return s
	case reflect.Map, reflect.Slice, reflect.Array:
		if elem := schemaOf(t.Elem(), tag, fold); elem != nil {
			return &schema{elem: elem, fold: fold}
		}
	}
	return nil
}

// keys are the schema's keys, sorted.
func (s *schema) keys() []string { return slices.Sorted(maps.Keys(s.fields)) }

// lookup finds key among the schema's keys.
func (s *schema) lookup(key string) (*schema, bool) {
	if s.fold {
		key = strings.ToLower(key)
	}
	sub, ok := s.fields[key]
	return sub, ok
}

// unknownKey is a key of the file that its schema does not have.
type unknownKey struct {
	path    string // e.g. http.tls.client_aut
	line    int
	suggest string   // the known key it is closest to, or ""
	known   []string // the keys of its mapping
	parent  string   // the path of its mapping, "" at the top
}

// unknownKeys walks n against s and returns every key s does not know; with prune it also takes
// them out of the tree, so that the tree can be decoded for the checks that come after.
func unknownKeys(n *yaml.Node, s *schema, path string, prune bool) []unknownKey {
	if n == nil || s == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return unknownKeys(n.Alias, s, path, false)
	}
	var out []unknownKey
	switch {
	case s.fields != nil && n.Kind == yaml.MappingNode:
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // a merge key: its keys are those of the mapping merged in
				out = append(out, unknownKeys(v, s, path, false)...)
				kept = append(kept, k, v)
				continue
			}
			sub, ok := s.lookup(k.Value)
			if !ok {
				out = append(out, unknownKey{path: join(path, k.Value), line: k.Line, suggest: closest(k.Value, s.keys(), s.fold),
					known: s.keys(), parent: path})
				continue
			}
			out = append(out, unknownKeys(v, sub, join(path, k.Value), prune)...)
			kept = append(kept, k, v)
		}
		if prune {
			n.Content = kept
		}
	case s.elem != nil && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, unknownKeys(n.Content[i+1], s.elem, join(path, n.Content[i].Value), prune)...)
		}
	case s.elem != nil && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			out = append(out, unknownKeys(item, s.elem, fmt.Sprintf("%s[%d]", path, i), prune)...)
		}
	}
	return out
}

// reportUnknown turns unknown keys into findings.
func (c *checker) reportUnknown(file string, keys []unknownKey) {
	for _, k := range keys {
		where := "the top level"
		if k.parent != "" {
			where = k.parent
		}
		fix := fmt.Sprintf("remove it; the keys of %s are %s", where, strings.Join(k.known, ", "))
		if k.suggest != "" {
			fix = "did you mean " + k.suggest + "?"
		}
		c.errorf(file, k.line, fix, "unknown key %s", k.path)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest is the key nearest to typo in edit distance, when it is near enough to be what was
// meant: at most 2 edits, and fewer than half the key's length.
func closest(typo string, keys []string, fold bool) string {
	if fold {
		typo = strings.ToLower(typo)
	}
	best, bestDist := "", 3
	for _, k := range keys {
		d := editDistance(typo, k)
		if d < bestDist && 2*d < len([]rune(k)) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// pathPart splits a key path such as "services.37.params[0]" or "trust.roots[1]".
var pathPart = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// lineOf is the line of the key at path in the mapping root: the line of the key itself, of the
// list item, or, when the path is not all in the file, of the deepest part that is (the key
// whose value is missing). It is 0 when no part of it is in the file.
func lineOf(root *yaml.Node, path string, fold bool) int {
	n, line := root, 0
	for _, part := range pathPart.FindAllString(path, -1) {
		if n != nil && n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n == nil {
			return line
		}
		next := (*yaml.Node)(nil)
		if strings.HasPrefix(part, "[") {
			i, _ := strconv.Atoi(strings.Trim(part, "[]"))
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		} else if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if k == part || fold && strings.EqualFold(k, part) {
					next = n.Content[i+1]
					line = n.Content[i].Line
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// value is the node at path in root, or nil.
func value(root *yaml.Node, key string) *yaml.Node {
	if root == nil || root.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			return root.Content[i+1]
		}
	}
	return nil
}

// valueAt is the node at a dotted path of mapping keys (matched whatever their case, as viper
// does), or nil.
func valueAt(root *yaml.Node, path string) *yaml.Node {
	n := root
	for _, part := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if strings.EqualFold(n.Content[i].Value, part) {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// detectKind tells a file's kind by its top-level keys and the shape of their values. It gives
// a problem instead when no kind fits, or two fit equally well.
func detectKind(root *yaml.Node) (Kind, string) {
	if root == nil || len(root.Content) == 0 {
		return "", "the file is empty"
	}
	score := map[Kind]int{}
	var top []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		key := root.Content[i].Value
		top = append(top, key)
		for _, k := range Kinds() {
			if _, ok := keySchemas[k].lookup(key); ok {
				score[k]++
			}
		}
	}
	// The keys several kinds share are told apart by their values.
	if t := value(root, "transport"); t != nil {
		if t.Kind == yaml.MappingNode {
			score[KindAdapter] += 2
		} else {
			score[KindBroker] += 2
		}
	}
	if s := value(root, "services"); s != nil {
		switch {
		case s.Kind == yaml.SequenceNode:
			score[KindRights] += 2
		case s.Kind == yaml.MappingNode && len(s.Content) >= 2:
			entry := s.Content[1]
			if value(entry, "queue") != nil || value(entry, "adapter") != nil {
				score[KindRoutes] += 2
			} else if value(entry, "backend") != nil {
				score[KindAdapter] += 2
			}
		}
	}
	best, bestScore, tie := Kind(""), 0, false
	for _, k := range Kinds() {
		switch {
		case score[k] > bestScore:
			best, bestScore, tie = k, score[k], false
		case score[k] == bestScore && bestScore > 0:
			tie = true
		}
	}
	switch {
	case bestScore == 0:
		return "", fmt.Sprintf("no kind of configuration has the top-level keys %s", strings.Join(top, ", "))
	case tie:
		return "", fmt.Sprintf("the top-level keys %s fit more than one kind", strings.Join(top, ", "))
	}
	return best, ""
}

// yamlLine finds "line N" in a YAML error.
var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// yamlErrorLine splits a YAML syntax error into its line and its message.
func yamlErrorLine(msg string) (int, string) {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, msg
}

// typeErrors are the values of data that do not decode into out (a pointer), each with its
// line; unknown keys are left to the schema. Decoding goes on past them, as yaml does.
func typeErrors(data []byte, out any) []lineMessage {
	err := yaml.Unmarshal(data, out)
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return nil
	}
	var found []lineMessage
	for _, e := range te.Errors {
		line, msg := yamlErrorLine(e)
		if strings.Contains(msg, " not found in type ") {
			continue
		}
		found = append(found, lineMessage{line, msg})
	}
	return found
}

type lineMessage struct {
	line int
	msg  string
}

// reportTypeErrors reports values of the wrong type, each named by its key when it can be found.
func (c *checker) reportTypeErrors(d *doc, errs []lineMessage) {
	for _, e := range errs {
		msg := e.msg
		if m := quotedValue.FindStringSubmatch(msg); m != nil {
			if key := keyWithValueAt(d.root, "", e.line, m[1]); key != "" {
				msg = key + ": " + msg
			}
		}
		c.errorf(d.Path, e.line, typeFix(e.msg), "%s", msg)
	}
}

// quotedValue is the value a YAML type error quotes: cannot unmarshal !!str `x` into int.
var quotedValue = regexp.MustCompile("`([^`]*)`")

// keyWithValueAt is the path of the key whose scalar value, on line, is value.
func keyWithValueAt(n *yaml.Node, path string, line int, value string) string {
	if n == nil {
		return ""
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := keyWithValueAt(n.Content[i+1], join(path, n.Content[i].Value), line, value); k != "" {
				return k
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if k := keyWithValueAt(item, fmt.Sprintf("%s[%d]", path, i), line, value); k != "" {
				return k
			}
		}
	case yaml.ScalarNode:
		if n.Line == line && n.Value == value {
			return path
		}
	}
	return ""
}

var unmarshalInto = regexp.MustCompile(`into (\S+)$`)

// typeFix says what to write instead of a value of the wrong type.
func typeFix(msg string) string {
	m := unmarshalInto.FindStringSubmatch(msg)
	if m == nil {
		return "write a value of the type the key takes"
	}
	switch t := m[1]; {
	case t == "time.Duration":
		return "write a duration with its unit, e.g. 10s, 5m or 1h"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "write a whole number"
	case t == "bool":
		return "write true or false"
	case t == "string":
		return "write a text value (quote it)"
	case strings.HasPrefix(t, "[]"):
		return "write a list, e.g. [a, b]"
	case strings.HasPrefix(t, "map["):
		return "write a mapping of keys"
	default:
		return "write a value of type " + t
	}
}

// lineMap translates the lines of a tree re-encoded without its unknown keys back to the lines
// of the file: both trees have the same shape, so walking them together pairs every node.
func lineMap(clean, orig *yaml.Node, m map[int]int) {
	if clean == nil || orig == nil {
		return
	}
	if _, ok := m[clean.Line]; !ok {
		m[clean.Line] = orig.Line
	}
	for i := 0; i < len(clean.Content) && i < len(orig.Content); i++ {
		lineMap(clean.Content[i], orig.Content[i], m)
	}
}

// cleaned is a file's content without its unknown keys, and the way back to the file's lines.
type cleaned struct {
	data  []byte
	lines map[int]int // nil when data is the file as it is
}

// line translates a line of the cleaned content to the file's.
func (c cleaned) line(n int) int {
	if c.lines == nil {
		return n
	}
	if l, ok := c.lines[n]; ok {
		return l
	}
	return n
}

// clean re-encodes the document whose top mapping, pruned of its unknown keys, is root, so
// that the package that reads the file sees past them and reports everything else.
func clean(d *doc, pruned bool) cleaned {
	if !pruned || d.root == nil {
		return cleaned{data: d.data}
	}
	out, err := yaml.Marshal(d.root)
	if err != nil {
		return cleaned{data: d.data}
	}
	var again yaml.Node
	if err := yaml.Unmarshal(out, &again); err != nil || len(again.Content) == 0 {
		return cleaned{data: d.data}
	}
	m := map[int]int{}
	lineMap(again.Content[0], d.root, m)
	return cleaned{data: out, lines: m}
}

func nodeKindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

func kindList() string {
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, "|")
}

// describeReadError is a read error without the path, which the finding names already.
func describeReadError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
