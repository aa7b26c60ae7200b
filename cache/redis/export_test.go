package tgredis

import "time"

// SetRecheck changes how often a subscribed Wait also reads the key, for a
// test that must see a notification arrive (an hour: none but the
// notification can wake it). It returns a function that restores it.
func SetRecheck(d time.Duration) (restore func()) {
	old := recheckEvery
	recheckEvery = d
	return func() { recheckEvery = old }
}
