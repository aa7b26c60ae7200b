package tggrpc_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Holds: binary metadata is never a token. A valid token sent as
// authorization-bin (or dpop-bin beside a DPoP scheme) is not read: the
// call has no token.
func TestReviewBinaryMetadataIsNoToken(t *testing.T) {
	as, g := newGuard(t, nil)
	conn, rc := start(t, g, testOptions())
	tok := as.Mint(oauthtest.Claims{"sub": "alice"})
	for _, md := range []metadata.MD{
		metadata.Pairs("authorization-bin", "Bearer "+tok),
		metadata.Pairs("authorization-bin", "Bearer "+tok, "x-authorization", "Bearer "+tok),
	} {
		o := unary(t, conn, methodGet, md)
		if o.code != codes.Unauthenticated || o.msg != "bearer token required" || o.challenge() != wantChallenge(g, "", "") {
			t.Errorf("%v: %v %q %q", md, o.code, o.msg, o.challenge())
		}
	}
	if rc.calls.Load() != 0 {
		t.Errorf("%d calls reached the handler", rc.calls.Load())
	}
}

// Holds: an incoming metadata key that is no header name (a space in
// it: never on the wire, but an interceptor in front may add one) is not
// taken for Authorization.
func TestReviewMetadataKeyThatIsNoHeaderName(t *testing.T) {
	as, g := newGuard(t, nil)
	intercept := tggrpc.UnaryServerInterceptor(g, testOptions())
	good := "Bearer " + as.Mint(oauthtest.Claims{"sub": "alice"})
	for _, k := range []string{"authorization ", " authorization", "authorization\t", "authori zation"} {
		reached := false
		ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{k: {good}})
		_, err := intercept(ctx, nil, &grpc.UnaryServerInfo{FullMethod: methodGet}, func(context.Context, any) (any, error) {
			reached = true
			return nil, nil
		})
		if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != "bearer token required" || reached {
			t.Errorf("key %q: %v %q, reached %v", k, st.Code(), st.Message(), reached)
		}
	}
}
