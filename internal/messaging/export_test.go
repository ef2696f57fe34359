package messaging

// SetAfterWamidLocked sets the hook finishSent runs once it holds the
// wamid's lock, and returns a function that removes it.
func SetAfterWamidLocked(f func()) (restore func()) {
	afterWamidLocked = f
	return func() { afterWamidLocked = nil }
}
