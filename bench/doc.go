// Package bench measures tokenguard against the bare signature check and
// against its peers (golang-jwt/v5 + keyfunc/v3, coreos/go-oidc/v3,
// auth0/go-jwt-middleware/v2, plain lestrrat-go/jwx/v3), all verifying the
// same tokens from one in-process authorization server (oauthtest) over
// loopback.
//
// The benchmarks are BenchmarkVerify/<lib>/<alg> (serial) and
// BenchmarkVerifyParallel/<lib>/<alg>; the key-rotation scenarios are tests
// that log fetch counts, acceptance and latency. See README.md and run.sh.
package bench
