//go:build odbc

package voicemail

// ODBC for realtime voicemail tables ("odbc:DSN=asterisk;..."), through
// github.com/alexbrainman/odbc: cgo and unixODBC (unixodbc-dev to build,
// unixodbc and the database's ODBC driver to run). Build with
// `make build TAGS=odbc`.

import _ "github.com/alexbrainman/odbc" // registers database/sql driver "odbc"

func init() { odbcDriver = "odbc" }
