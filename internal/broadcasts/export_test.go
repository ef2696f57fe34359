package broadcasts

// SetAfterHandOver sets the hook a batch runs after handing each recipient
// over, and returns a function that removes it.
func SetAfterHandOver(f func(recipientID string) error) (restore func()) {
	afterHandOver.Store(&f)
	return func() { afterHandOver.Store(nil) }
}
