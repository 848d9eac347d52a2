package peer

// Seams for the tests of package peer_test.

// SetGeneratorInstance makes p mint IDs with instance tag inst.
func SetGeneratorInstance(p *Peer, inst [6]byte) { p.gen.SetInstance(inst) }

// GeneratorInstance returns p's current instance tag.
func GeneratorInstance(p *Peer) [6]byte { return p.gen.Instance() }

// MarkedLeaving reports whether p holds a leaving mark for name.
func MarkedLeaving(p *Peer, name string) bool { return p.departing.Leaving(name) }

// ProtoVersion is the data-plane protocol version peers send.
const ProtoVersion = protoVersion
