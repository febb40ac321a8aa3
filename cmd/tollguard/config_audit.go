package main

// AuditConfig is the scheduled audits' section. (Seam for the audits
// engineer: fill in schedules, paths, thresholds, validation.)
type AuditConfig struct {
	Enabled bool `toml:"enabled"`
}

func (a *AuditConfig) defaults()                              {}
func (a *AuditConfig) validate(c *Config, errs *ConfigErrors) {}
