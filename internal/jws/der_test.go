package jws

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"testing"
)

// derSignature must produce exactly what encoding/asn1 produces for the
// same two integers, for every size and edge: zeros, leading zero bytes,
// top bit set, all 0xff.
func TestDERSignatureMatchesASN1(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{32, 48, 66} {
		edges := [][]byte{make([]byte, size), bytes.Repeat([]byte{0xff}, size), append(make([]byte, size-1), 1), append([]byte{0x80}, make([]byte, size-1)...), append([]byte{0, 0x80}, make([]byte, size-2)...)}
		for range 200 {
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			if rng.IntN(4) == 0 {
				b[0], b[1] = 0, byte(rng.IntN(256))
			}
			edges = append(edges, b)
		}
		for _, r := range edges {
			for _, s := range edges[:8] {
				want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
				if err != nil {
					t.Fatal(err)
				}
				var buf [160]byte
				if got := derSignature(buf[:0], r, s); !bytes.Equal(got, want) {
					t.Fatalf("size %d r %x s %x:\n got %x\nwant %x", size, r, s, got, want)
				}
			}
		}
	}
}
