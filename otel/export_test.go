package tgotel

// SafeURL and ErrorType are for the tests.
var (
	SafeURL   = safeURL
	ErrorType = errorType
	Outcome   = outcome
)
