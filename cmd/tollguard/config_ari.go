package main

// ARIConfig is the ARI listener's section. (Seam for the ARI listener:
// fill in its settings, defaults, validation and environment.)
type ARIConfig struct {
	Enabled bool `toml:"enabled"`
}

func (a *ARIConfig) defaults()                              {}
func (a *ARIConfig) validate(c *Config, errs *ConfigErrors) {}
func (a *ARIConfig) applyEnv(getenv func(string) string)    {}

// DetectorsConfig is the channel detectors' section. (Seam.)
type DetectorsConfig struct{}

func (d *DetectorsConfig) defaults()                              {}
func (d *DetectorsConfig) validate(c *Config, errs *ConfigErrors) {}

func (a *ARIConfig) maskSecrets() {}
