package tgfiber

import (
	"net/http"

	"github.com/valyala/fasthttp"
)

// responseWriter is the http.ResponseWriter Guard.WriteError writes a
// refusal to: it puts the status, the header fields and the body into
// fasthttp's response as net/http would have sent them.
//
// Header fields are taken when the status is written, as net/http takes
// them: each key the core set replaces what the response held under it
// (so the core's WWW-Authenticate, Cache-Control and Retry-After are the
// only ones), every value of a key becomes a field of its own, in order
// (with DPoP allowed there are two WWW-Authenticate fields), and fields set
// by handlers before the refusal under other keys are kept. Without a
// Content-Type of the core's (or of Config.ErrorHandler's), the body's
// type is sniffed as net/http does, and an empty body goes out without
// one, where fasthttp would have named text/plain.
type responseWriter struct {
	res    *fasthttp.Response
	header http.Header
	wrote  bool
	typed  bool // the header named a Content-Type when the status was written
}

func newResponseWriter(res *fasthttp.Response) *responseWriter {
	res.ResetBody() // the answer is the core's alone
	return &responseWriter{res: res, header: make(http.Header, 4)}
}

// Header returns the header fields to send.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader sets the status and the header fields. An informational
// status (1xx) is ignored: fasthttp sends one answer per request.
func (w *responseWriter) WriteHeader(code int) {
	if w.wrote || code < 200 {
		return
	}
	w.wrote = true
	w.res.SetStatusCode(code)
	h := &w.res.Header
	for k, vv := range w.header {
		h.Del(k)
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	_, w.typed = w.header["Content-Type"]
}

// Write appends b to the body, after a 200 status if none was written.
func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.res.AppendBody(b)
	return len(b), nil
}

// finish completes the answer once the core has written it: the status,
// if it wrote none, and the Content-Type net/http would have sent.
func (w *responseWriter) finish() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.typed {
		return
	}
	if body := w.res.Body(); len(body) > 0 {
		w.res.Header.SetContentType(http.DetectContentType(body[:min(len(body), 512)]))
	} else {
		w.res.Header.SetNoDefaultContentType(true)
	}
}
