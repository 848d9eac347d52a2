package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
)

// configFile is the agent's --config file: a TOML file whose keys are the
// agent's flag names. A flag given on the command line or in the environment
// overrides the file's key; the file overrides the built-in default.
type configFile struct {
	path string
	used map[string]any // key → TOML value, for the keys that set their flag
}

// applyConfigFile reads the --config file, if any, and sets every flag it
// names that the command line and the environment left unset. It fails on
// the first key, in file order, that is unknown or whose value does not fit
// its flag.
func applyConfigFile(c *cli.Context) (*configFile, error) {
	path := c.String("config")
	if path == "" {
		return nil, nil
	}
	var values map[string]any
	md, err := toml.DecodeFile(path, &values)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	file := &configFile{path: path, used: map[string]any{}}
	for _, key := range topLevelKeys(md) {
		if err := file.apply(c, key, values[key]); err != nil {
			return nil, err
		}
	}
	return file, nil
}

// topLevelKeys lists the file's top-level keys in the order they appear. A
// table or dotted key ("replicas.x = 1") counts as its first part, so it is
// refused like any other value that is not a flag's.
func topLevelKeys(md toml.MetaData) []string {
	var keys []string
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if !seen[k[0]] {
			seen[k[0]] = true
			keys = append(keys, k[0])
		}
	}
	return keys
}

func (file *configFile) apply(c *cli.Context, key string, v any) error {
	f := lookupFlag(c.Command.Flags, key)
	switch {
	case f == nil:
		return file.unknownKey(c.Command.Flags, key)
	case !fileKey(f):
		return fmt.Errorf("config %s: key %q is accepted only on the command line", file.path, key)
	}
	args, ok := setArgs(f, v)
	if !ok {
		return file.invalid(key, v, fmt.Errorf("want %s", want(f)))
	}
	if c.IsSet(key) {
		return nil // the command line or the environment wins
	}
	for _, a := range args {
		if err := c.Set(key, a); err != nil {
			return file.invalid(key, v, fmt.Errorf("%w (want %s)", err, want(f)))
		}
	}
	file.used[key] = v
	return nil
}

// fileKey reports whether a config file may set f. The hidden flags are for
// fault tests (no replication, a skewed clock, dropped pushes...): a config
// file that outlives the test must not carry them, so the file refuses them
// and --print-config leaves them out. --config, --print-config and --help
// are command-line only too.
func fileKey(f cli.Flag) bool {
	if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
		return false
	}
	switch f.Names()[0] {
	case "config", "print-config", cli.HelpFlag.Names()[0]:
		return false
	}
	return true
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if f.Names()[0] == name {
			return f
		}
	}
	return nil
}

// setArgs turns a TOML value into the strings that set flag f: one per
// element for a list flag, else exactly one. It fails on tables, on lists
// for other flags and on dates.
func setArgs(f cli.Flag, v any) ([]string, bool) {
	list, isList := v.([]any)
	if !isList {
		s, ok := scalarText(v)
		return []string{s}, ok
	}
	if _, ok := f.(*cli.StringSliceFlag); !ok {
		return nil, false
	}
	args := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := scalarText(e)
		if !ok {
			return nil, false
		}
		args = append(args, s)
	}
	return args, true
}

// scalarText renders a TOML string, boolean or number as a flag would be
// written on the command line. Durations are strings in TOML ("30s").
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return "", false
}

// want describes the value flag f takes, for error messages.
func want(f cli.Flag) string {
	switch f.(type) {
	case *cli.IntFlag:
		return "a whole number"
	case *cli.BoolFlag:
		return "true or false"
	case *cli.DurationFlag:
		return "a duration such as 30s or 5m"
	case *cli.StringSliceFlag:
		return "a list of strings"
	}
	return "a string"
}

// explain reports err as the file's key when it is about a flag whose value
// came from the file; other errors are returned as they are.
func (file *configFile) explain(err error) error {
	var fe *flagError
	if file == nil || !errors.As(err, &fe) {
		return err
	}
	v, ok := file.used[fe.flag]
	if !ok {
		return err
	}
	return file.invalid(fe.flag, v, fe.err)
}

func (file *configFile) invalid(key string, v any, err error) error {
	shown := tomlText(v)
	if key == "encrypt" {
		shown = "(the key is not shown)"
	}
	return fmt.Errorf("config %s: key %q = %s: invalid value: %w", file.path, key, shown, err)
}

func (file *configFile) unknownKey(flags []cli.Flag, key string) error {
	if near := closestKey(flags, key); near != "" {
		return fmt.Errorf("config %s: unknown key %q (did you mean %q?)", file.path, key, near)
	}
	return fmt.Errorf("config %s: unknown key %q", file.path, key)
}

// tomlText renders a decoded TOML value for an error message.
func tomlText(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = tomlText(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []map[string]any:
		return fmt.Sprintf("(%d tables)", len(v))
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + " = " + tomlText(v[k])
		}
		return "{" + strings.Join(keys, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// closestKey suggests the key a misspelt one was meant to be: the nearest
// by edit distance, if it is near enough.
func closestKey(flags []cli.Flag, key string) string {
	best, bestDist := "", max(1, len(key)/3)+1
	for _, f := range flags {
		if !fileKey(f) {
			continue
		}
		name := f.Names()[0]
		if d := editDistance(strings.ToLower(key), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			sub := prev[j-1]
			if ra[i-1] != rb[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
