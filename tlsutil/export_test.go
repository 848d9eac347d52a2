package tlsutil

import "time"

// Recheck makes the next use look at the files again (tests do not wait a second).
func (id *Identity) Recheck() {
	id.mu.Lock()
	id.checked = time.Time{}
	id.mu.Unlock()
}
