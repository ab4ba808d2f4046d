package logmux

import (
	"bytes"
	"io"
	"os"
	"testing"
)

const benchLine = "GET /api/v1/users/42 200 1.234ms request_id=7f3a9c2e"

// benchAttach pushes b.N short lines through a real pipe and the mux.
// allocs/op near zero means the per-line path does not allocate: the few
// allocations of Attach itself are spread over b.N lines. The writer fills
// the pipe in 64 KiB writes, so this measures the mux with full batches;
// bench/logpath measures it against a real app.
func benchAttach(b *testing.B, opts Options, setup ...func(*Mux)) {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	opts.Out = io.Discard
	m := New(opts)
	m.Declare([]App{{Name: "web", Instances: 4}})
	for _, f := range setup {
		f(m)
	}
	line := []byte(benchLine + "\n")
	chunk := bytes.Repeat(line, 64<<10/len(line))
	perChunk := len(chunk) / len(line)

	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	done := m.Attach(r, Source{App: "web", Instance: 3, PID: 4242})
	for left := b.N; left > 0; left -= perChunk {
		if _, err := w.Write(chunk[:min(left, perChunk)*len(line)]); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	<-done
}

func BenchmarkAttach(b *testing.B) {
	benchAttach(b, Options{})
}

// BenchmarkAttachNoHistory is BenchmarkAttach without the history, for what
// keeping it costs.
func BenchmarkAttachNoHistory(b *testing.B) {
	benchAttach(b, Options{HistoryLines: -1})
}

// BenchmarkAttachSubscribed adds a subscriber that takes every line, as a
// `clusterrun logs` client does.
func BenchmarkAttachSubscribed(b *testing.B) {
	benchAttach(b, Options{}, func(m *Mux) {
		recs, _, cancel := m.Subscribe(nil, 1024)
		go func() {
			for range recs {
			}
		}()
		b.Cleanup(cancel)
	})
}

func BenchmarkAttachColorTimestamps(b *testing.B) {
	benchAttach(b, Options{Color: true, Timestamps: true})
}

func BenchmarkAttachJSON(b *testing.B) {
	benchAttach(b, Options{Format: JSON})
}

func benchRecord() *Record {
	return &Record{Time: t0, App: "web", Instance: 3, PID: 4242, Stream: Stdout, Line: []byte(benchLine + ` "quoted" é`)}
}

func BenchmarkFormatJSON(b *testing.B) {
	f := &Formatter{Format: JSON}
	rec := benchRecord()
	var buf []byte
	b.SetBytes(int64(len(rec.Line)))
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], rec)
	}
}

func BenchmarkFormatText(b *testing.B) {
	f := &Formatter{Color: true, Timestamps: true}
	rec := benchRecord()
	var buf []byte
	b.SetBytes(int64(len(rec.Line)))
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], rec)
	}
}
