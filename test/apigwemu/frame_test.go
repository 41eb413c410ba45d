package apigwemu

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func TestAcceptKeyRFC6455Vector(t *testing.T) {
	// RFC 6455 section 1.3.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptKey = %q", got)
	}
}

// maskedFrame builds a client frame (masked, as clients must send).
func maskedFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var hdr []byte
	n := len(payload)
	switch {
	case n <= 125:
		hdr = []byte{b0, byte(n)}
	case n <= 0xFFFF:
		hdr = []byte{b0, 126, byte(n >> 8), byte(n)}
	default:
		hdr = []byte{b0, 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	hdr[1] |= 0x80
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	out := append(hdr, mask[:]...)
	for i, b := range payload {
		out = append(out, b^mask[i&3])
	}
	return out
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		limit   uint64
		wantErr error
	}{
		{"7-bit length", []byte("Hello"), MaxFrameSize, nil},
		{"16-bit length", bytes.Repeat([]byte("x"), 300), MaxFrameSize, nil},
		{"64-bit length", bytes.Repeat([]byte("y"), 70000), 1 << 20, nil},
		{"at limit", bytes.Repeat([]byte("z"), MaxFrameSize), MaxFrameSize, nil},
		{"over limit", bytes.Repeat([]byte("z"), MaxFrameSize+1), MaxFrameSize, errFrameTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(bytes.NewReader(maskedFrame(true, opText, tc.payload)))
			h, err := readFrameHeader(r, tc.limit)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("readFrameHeader err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !h.fin || h.opcode != opText || !h.masked || h.length != uint64(len(tc.payload)) {
				t.Fatalf("header %+v", h)
			}
			p, err := readPayload(r, h)
			if err != nil || !bytes.Equal(p, tc.payload) {
				t.Fatalf("payload mismatch (%v)", err)
			}
		})
	}
}

func TestAppendMessageFragments(t *testing.T) {
	tests := []struct {
		size, frames int
	}{
		{0, 1}, {MaxFrameSize, 1}, {MaxFrameSize + 1, 2}, {MaxMessageSize, 4}, {3*MaxFrameSize + 17, 4},
	}
	for _, tc := range tests {
		msg := bytes.Repeat([]byte("m"), tc.size)
		r := bufio.NewReader(bytes.NewReader(appendMessage(nil, opText, msg, MaxFrameSize)))
		var got []byte
		for i := 0; ; i++ {
			h, err := readFrameHeader(r, MaxFrameSize)
			if err != nil {
				t.Fatalf("size %d frame %d: %v", tc.size, i, err)
			}
			if h.masked {
				t.Fatal("server frames must not be masked")
			}
			if wantOp := byte(opContinuation); i == 0 && h.opcode != opText || i > 0 && h.opcode != wantOp {
				t.Fatalf("frame %d opcode %d", i, h.opcode)
			}
			p, _ := readPayload(r, h)
			got = append(got, p...)
			if h.fin {
				if i+1 != tc.frames {
					t.Fatalf("size %d: %d frames, want %d", tc.size, i+1, tc.frames)
				}
				break
			}
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: reassembly differs", tc.size)
		}
	}
}

func TestClosePayload(t *testing.T) {
	tests := []struct {
		code       int
		reason     string
		wantCode   int
		wantReason string
	}{
		{CloseMessageTooBig, "Message too big", CloseMessageTooBig, "Message too big"},
		{CloseNoStatus, "", CloseNoStatus, ""},
		{CloseNormal, string(bytes.Repeat([]byte("r"), 200)), CloseNormal, string(bytes.Repeat([]byte("r"), 123))},
	}
	for _, tc := range tests {
		code, reason, err := parseClosePayload(closePayload(tc.code, tc.reason))
		if err != nil || code != tc.wantCode || reason != tc.wantReason {
			t.Errorf("close(%d) -> %d %q %v", tc.code, code, reason, err)
		}
	}
	if _, _, err := parseClosePayload([]byte{3}); err == nil {
		t.Error("one-byte close payload accepted")
	}
}

// FuzzReadFrame: arbitrary client bytes never panic the frame parser, and a
// header is only accepted when its payload is within the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add(maskedFrame(true, opText, []byte("hello")))
	f.Add(maskedFrame(false, opBinary, make([]byte, 200)))
	f.Add([]byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x88, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 8 {
			h, err := readFrameHeader(r, 1024)
			if err != nil {
				return
			}
			if h.length > 1024 {
				t.Fatalf("accepted %d-byte frame over the 1024 limit", h.length)
			}
			if _, err := readPayload(r, h); err != nil {
				return
			}
		}
	})
}
