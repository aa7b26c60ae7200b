package tggrpc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"
)

// The conformance routes as gRPC methods: PathAny is methodAny (any valid
// token), PathScoped methodScoped (conformance.ScopeRequired), each with a
// unary method and a server stream.
const (
	methodAny          = "/tgconformance.Probe/Any"
	methodScoped       = "/tgconformance.Probe/Scoped"
	methodAnyStream    = "/tgconformance.Probe/AnyStream"
	methodScopedStream = "/tgconformance.Probe/ScopedStream"
)

// probeDesc answers every call with what its handler saw: "reached", the
// subject and the kind of the Principal in its context (or "reached - -").
var probeDesc = func() grpc.ServiceDesc {
	sd := grpc.ServiceDesc{ServiceName: "tgconformance.Probe", HandlerType: (*any)(nil)}
	for _, name := range []string{"Any", "Scoped"} {
		full := "/tgconformance.Probe/" + name
		sd.Methods = append(sd.Methods, grpc.MethodDesc{MethodName: name,
			Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.StringValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, func(ctx context.Context, _ any) (any, error) {
					return wrapperspb.String(probed(ctx)), nil
				})
			}})
		sd.Streams = append(sd.Streams, grpc.StreamDesc{StreamName: name + "Stream", ServerStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				if err := ss.RecvMsg(new(wrapperspb.StringValue)); err != nil {
					return err
				}
				return ss.SendMsg(wrapperspb.String(probed(ss.Context())))
			}})
	}
	return sd
}()

// probed is what a conformance handler reports of its context.
func probed(ctx context.Context) string {
	p, ok := tggrpc.PrincipalFrom(ctx)
	if !ok {
		return "reached - -"
	}
	return "reached " + p.Subject + " " + p.Kind.String()
}

// grpcCode is the code a row's HTTP status must come as.
var grpcCode = map[int]codes.Code{200: codes.OK, 400: codes.InvalidArgument, 401: codes.Unauthenticated, 403: codes.PermissionDenied, 500: codes.Internal, 503: codes.Unavailable}

// The conformance table through a real gRPC server (bufconn), each row
// as a unary call and as a server stream against a fresh authorization
// server and Guard: the row's headers go as metadata (lower-case keys),
// its DPoP proofs name conformance.Origin + "/package.Service/Method" and
// POST, and the answer must be the row's, in gRPC's terms: the code for
// the status, the error_description as message, the WWW-Authenticate
// values joined with ", " (as Guard.Challenge joins them) in
// www-authenticate, Retry-After in retry-after, DPoP-Nonce in dpop-nonce
// (the header of a unary call, the trailer of a stream), and on success
// the subject and kind the handler saw.
func TestConformance(t *testing.T) {
	for _, row := range conformance.Rows() {
		for _, kind := range []string{"unary", "stream"} {
			t.Run(row.Name+"/"+kind, func(t *testing.T) {
				f := conformance.NewFixture(t, row)
				opts := tggrpc.Options{Methods: map[string][]tokenguard.Requirement{
					methodScoped:       {tokenguard.AllScopes(conformance.ScopeRequired)},
					methodScopedStream: {tokenguard.AllScopes(conformance.ScopeRequired)},
				}}
				srv := grpc.NewServer(
					grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(f.Guard, opts)),
					grpc.ChainStreamInterceptor(tggrpc.StreamServerInterceptor(f.Guard, opts)))
				srv.RegisterService(&probeDesc, struct{}{})
				conn := serveBufconn(t, srv)

				method := map[string]string{conformance.PathAny: methodAny, conformance.PathScoped: methodScoped}[row.Path]
				if kind == "stream" {
					method += "Stream"
				}
				url := conformance.Origin + "/" + strings.TrimPrefix(method, "/")
				md := metadata.MD{}
				for k, vs := range row.Header(f, http.MethodPost, url) {
					md[strings.ToLower(k)] = vs
				}
				var o outcome
				var header metadata.MD // the header of an accepted call
				if kind == "unary" {
					o = unary(t, conn, method, md)
					header = o.md
				} else {
					o, header = streamWithHeader(t, conn, method, md)
				}

				if want := grpcCode[row.Status]; o.code != want {
					t.Errorf("code %v %q, want %v (HTTP %d)", o.code, o.msg, want, row.Status)
				}
				if row.Status == http.StatusOK {
					if want := "reached " + row.Subject + " " + row.Kind; o.reply != want {
						t.Errorf("handler saw %q, want %q", o.reply, want)
					}
					if row.Nonces && strings.HasPrefix(md.Get("authorization")[0], "DPoP ") && !slices.Equal(header.Get("dpop-nonce"), []string{f.Guard.DPoPNonce()}) {
						t.Errorf("dpop-nonce of an accepted DPoP call %q, want %q", header.Get("dpop-nonce"), f.Guard.DPoPNonce())
					}
					return
				}
				if o.reply != "" {
					t.Errorf("the protected handler was reached: %q", o.reply)
				}
				var body struct {
					Description string `json:"error_description"`
				}
				if err := json.Unmarshal([]byte(row.Body), &body); err != nil {
					t.Fatalf("row body %q: %v", row.Body, err)
				}
				if o.msg != body.Description {
					t.Errorf("message %q, want %q", o.msg, body.Description)
				}
				want := row.WantChallenges(f)
				got := o.md.Get("www-authenticate")
				switch {
				case len(want) == 0 && len(got) != 0:
					t.Errorf("www-authenticate %q, want none", got)
				case len(want) > 0 && !slices.Equal(got, []string{strings.Join(want, ", ")}):
					t.Errorf("www-authenticate\n got %q\nwant %q (joined with \", \")", got, want)
				}
				if got := strings.Join(o.md.Get("retry-after"), ","); got != row.RetryAfter {
					t.Errorf("retry-after %q, want %q", got, row.RetryAfter)
				}
				if got := o.md.Get("dpop-nonce"); row.DPoPNonce && !slices.Equal(got, []string{f.Guard.DPoPNonce()}) {
					t.Errorf("dpop-nonce %q, want %q", got, f.Guard.DPoPNonce())
				} else if !row.DPoPNonce && len(got) != 0 {
					t.Errorf("dpop-nonce %q, want none", got)
				}
			})
		}
	}
}

// streamWithHeader is stream, with the stream's header too.
func streamWithHeader(t testing.TB, conn *grpc.ClientConn, method string, md metadata.MD) (outcome, metadata.MD) {
	t.Helper()
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(context.Background(), md))
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	if err := cs.SendMsg(wrapperspb.String("hi")); err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	header, _ := cs.Header()
	out := new(wrapperspb.StringValue)
	var o outcome
	if err = cs.RecvMsg(out); err == nil {
		o.reply = out.GetValue()
		_ = cs.RecvMsg(out) // io.EOF
	}
	st := status.Convert(err)
	o.code, o.msg, o.md = st.Code(), st.Message(), cs.Trailer()
	return o, header
}
