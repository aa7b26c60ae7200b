package tokenguard

// SetDPoPReplayCapacity sets the capacity of the DPoP replay store of
// Guards built from now on, for tests that flood it; it returns the undo.
func SetDPoPReplayCapacity(n int) (restore func()) {
	old := dpopReplayCapacity
	dpopReplayCapacity = n
	return func() { dpopReplayCapacity = old }
}
