package link

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// HeaderSig carries a data-plane call's signature when gossip is encrypted
// and peers have no TLS identities: an HMAC, under a key derived from each
// gossip key, of the method, the request URI and the caller's name. It
// proves the caller holds the cluster's key, so outsiders cannot push,
// repair or read through /internal. It is no TLS: a call seen on the wire
// can be replayed (pushes are idempotent) and its contents read.
const HeaderSig = "X-Logmesh-Sig"

// dataKey derives the data plane's signing key from a gossip key, so that
// the gossip key itself signs nothing outside gossip.
func dataKey(gossipKey []byte) []byte {
	m := hmac.New(sha256.New, gossipKey)
	m.Write([]byte("logmesh data plane v1"))
	return m.Sum(nil)
}

func signature(key []byte, method, uri, from string) []byte {
	m := hmac.New(sha256.New, dataKey(key))
	for _, s := range []string{method, uri, from} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Sign stamps req (whose HeaderFrom is set) with the signature under key.
func Sign(req *http.Request, key []byte) {
	sig := signature(key, req.Method, req.URL.RequestURI(), req.Header.Get(HeaderFrom))
	req.Header.Set(HeaderSig, base64.RawURLEncoding.EncodeToString(sig))
}

// Verify reports whether req carries a valid signature under one of keys.
func Verify(req *http.Request, keys [][]byte) bool {
	got, err := base64.RawURLEncoding.DecodeString(req.Header.Get(HeaderSig))
	if err != nil || len(got) == 0 {
		return false
	}
	for _, k := range keys {
		if hmac.Equal(got, signature(k, req.Method, req.URL.RequestURI(), req.Header.Get(HeaderFrom))) {
			return true
		}
	}
	return false
}
