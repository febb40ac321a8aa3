package main

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestSampleConfig: contrib/tollguard.toml parses, equals the defaults,
// and documents every setting there is.
func TestSampleConfig(t *testing.T) {
	const path = "../../contrib/tollguard.toml"
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("the sample config does not load: %v", err)
	}
	def := DefaultConfig()
	cfg.path, cfg.lines = "", nil
	if !reflect.DeepEqual(encode(t, cfg), encode(t, def)) {
		t.Errorf("the sample's values differ from the defaults:\nsample:\n%s\ndefaults:\n%s", encode(t, cfg), encode(t, def))
	}
	text, _ := os.ReadFile(path)
	sample := string(text)
	// Every key of the config struct must appear in the sample, set or
	// commented out.
	for _, key := range configKeys(reflect.TypeOf(Config{}), "") {
		if table, ok := strings.CutSuffix(key, ".*"); ok {
			name := table[strings.LastIndexByte(table, '.')+1:]
			if !strings.Contains(sample, "["+table+"]") && !strings.Contains(sample, "\n# "+name+" =") {
				t.Errorf("table [%s] is not in the sample", table)
			}
			continue
		}
		section, name := "", key
		if i := strings.LastIndexByte(key, '.'); i >= 0 {
			section, name = key[:i], key[i+1:]
		}
		if section != "" && !strings.Contains(sample, "["+section+"]") && !strings.Contains(sample, "["+section+".") {
			t.Errorf("section [%s] is not in the sample", section)
			continue
		}
		if !strings.Contains(sample, "\n"+name+" =") && !strings.Contains(sample, "\n# "+name+" =") {
			t.Errorf("setting %s is not documented in contrib/tollguard.toml", key)
		}
	}
}

func encode(t *testing.T, c *Config) string {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// configKeys lists the dotted TOML keys of a config struct type.
func configKeys(typ reflect.Type, prefix string) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		key := prefix + tag
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration{}) {
			out = append(out, configKeys(ft, key+".")...)
			continue
		}
		if ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct {
			continue // tables keyed by name (detectors) are checked by their section
		}
		if ft.Kind() == reflect.Map {
			key += ".*" // a table of names: documented by its [section]
		}
		out = append(out, key)
	}
	return out
}
