package httpserve_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/httpserve"
	"github.com/clusterrun/clusterrun/httpserve/httpservetest"
)

// TestWriteJSON: an answer is json.Marshal's bytes and a newline, HTML
// escaped as Marshal does, whatever answers came before it through the
// pooled buffer (a long one, then a short one); a value that cannot be
// encoded is a 500 with a JSON error and no piece of the value.
func TestWriteJSON(t *testing.T) {
	long := map[string]any{"apps": strings.Repeat("x", 10000), "html": "<a href=\"x\">&</a>"}
	short := struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}{"web <b>", 3}
	for _, v := range []any{long, short, long, short, []int{}, nil} {
		rec := httptest.NewRecorder()
		httpserve.WriteJSON(httpservetest.Writer(rec), http.StatusAccepted, v)
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != string(want)+"\n" {
			t.Errorf("WriteJSON(%T) = %.80q, want %.80q", v, got, string(want)+"\n")
		}
		if rec.Code != http.StatusAccepted || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("WriteJSON(%T): %d %q", v, rec.Code, rec.Header().Get("Content-Type"))
		}
	}

	rec := httptest.NewRecorder()
	httpserve.WriteJSON(httpservetest.Writer(rec), http.StatusOK, map[string]any{"before": "visible?", "bad": math.NaN()})
	var e httpserve.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusInternalServerError || e.Status != 500 {
		t.Fatalf("unencodable value: %d %q (%v)", rec.Code, rec.Body, err)
	}
	if strings.Contains(rec.Body.String(), "visible?") {
		t.Errorf("a failed encoding leaked part of the value: %q", rec.Body)
	}
}
