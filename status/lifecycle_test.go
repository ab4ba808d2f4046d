package status

import (
	"encoding/json"
	"testing"
)

// Every kind has a name that reads back as the same kind, so a subscriber
// that sends events as JSON (the API's event stream) loses nothing.
func TestLifecycleKindNames(t *testing.T) {
	for k := Started; k < numKinds; k++ {
		b, err := json.Marshal(Lifecycle{Kind: k})
		if err != nil {
			t.Fatalf("%d: %v", k, err)
		}
		var back Lifecycle
		if err := json.Unmarshal(b, &back); err != nil || back.Kind != k {
			t.Errorf("%s: %s read back as %v, %v", k, b, back.Kind, err)
		}
	}
	if len(lifecycleNames) != int(numKinds) {
		t.Errorf("%d names for %d kinds", len(lifecycleNames), numKinds)
	}
	if _, err := json.Marshal(Lifecycle{Kind: numKinds}); err == nil {
		t.Error("an unknown kind was written")
	}
	var k LifecycleKind
	if err := k.UnmarshalText([]byte("nonsense")); err == nil {
		t.Error("an unknown name was read")
	}
}
