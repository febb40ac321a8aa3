package main

// AlertsConfig is the alerts and notifiers section. (Seam for the
// alerts engineer: fill in settings, defaults, validation, environment.)
type AlertsConfig struct{}

func (a *AlertsConfig) defaults()                              {}
func (a *AlertsConfig) validate(c *Config, errs *ConfigErrors) {}
func (a *AlertsConfig) applyEnv(getenv func(string) string)    {}

func (a *AlertsConfig) maskSecrets() {}
