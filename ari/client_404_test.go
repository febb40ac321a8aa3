package ari

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestConfig404SaysNotFoundOnlyForTheObject: every 404 on a config
// object read "not found", so a 404 for a missing object type
// (res_pjsip not loaded) or a proxy's own 404 page counted a purge's
// delete as done and made the partial-purge note call objects deleted.
// Only Asterisk's "Object with id ... not found" (recorded) says so now.
func TestConfig404SaysNotFoundOnlyForTheObject(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, body, ctype string
		want              string
	}{
		{"ObjectNotFound", `{"message": "Object with id '1009' not found"}`, "application/json", tollguard.ENOTFOUND},
		// resource_asterisk.c's texts for a class no module registered
		// (res_pjsip not loaded), and for a type the class does not
		// have (checked after the class: res_pjsip is loaded).
		{"NoConfigClass", `{"message": "configClass 'res_pjsip' not found"}`, "application/json", tollguard.EUNAVAILABLE},
		{"NoObjectType", `{"message": "objectType 'endpoint' not found"}`, "application/json", tollguard.EUNAVAILABLE},
		{"ProxyPage", "<html><body><h1>404 Not Found</h1></body></html>\n", "text/html", tollguard.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(http.StatusNotFound)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			cfg := testConfig(newFake(t))
			cfg.URL = srv.URL
			c := newClient(t, cfg)
			_, rerr := c.ConfigObject(ctx, "endpoint", "1009")
			derr := c.DeleteConfigObject(ctx, "endpoint", "1009")
			for op, err := range map[string]error{"read": rerr, "delete": derr} {
				if got := tollguard.ErrorCode(err); got != tc.want {
					t.Errorf("%s answered 404 %s: code %q (%v), want %q", op, tc.body, got, err, tc.want)
				}
			}
			if tc.want == tollguard.EUNAVAILABLE && !strings.Contains(tollguard.ErrorMessage(derr), "module show like res_pjsip") {
				t.Errorf("delete answered 404 %s: %v; want the advice to check res_pjsip and [ari] url", tc.body, derr)
			}
			loadAdvice := strings.Contains(tollguard.ErrorMessage(derr), "module load res_pjsip.so")
			if tc.name == "NoConfigClass" && !loadAdvice {
				t.Errorf("delete answered 404 %s: %v; want Asterisk's own answer read as res_pjsip not loaded", tc.body, derr)
			}
			if tc.name == "NoObjectType" && (loadAdvice || strings.Contains(tollguard.ErrorMessage(derr), "not loaded")) {
				t.Errorf("delete answered 404 %s: %v; Asterisk found res_pjsip's config class before the type, so it is loaded", tc.body, derr)
			}
		})
	}
}
