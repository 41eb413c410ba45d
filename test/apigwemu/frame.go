package apigwemu

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes (RFC 6455 section 7.4.1).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseNoStatus        = 1005
	CloseAbnormal        = 1006
	CloseInvalidPayload  = 1007
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011
	maxControlPayloadLen = 125
)

// errFrameTooBig is returned by readFrameHeader for a frame whose declared
// payload exceeds the limit; the payload has not been read.
var errFrameTooBig = errors.New("websocket frame too big")

// protocolError is a violation of RFC 6455 by the client.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "websocket protocol error: " + e.msg }

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	rsv    byte
	opcode byte
	masked bool
	length uint64
	mask   [4]byte
}

// readFrameHeader reads one frame header and rejects, before any payload is
// read, frames longer than maxPayload.
func readFrameHeader(r *bufio.Reader, maxPayload uint64) (frameHeader, error) {
	var h frameHeader
	var b [8]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return h, err
	}
	h.fin = b[0]&0x80 != 0
	h.rsv = b[0] & 0x70
	h.opcode = b[0] & 0x0F
	h.masked = b[1]&0x80 != 0
	h.length = uint64(b[1] & 0x7F)
	switch h.length {
	case 126:
		if _, err := io.ReadFull(r, b[:2]); err != nil {
			return h, err
		}
		h.length = uint64(binary.BigEndian.Uint16(b[:2]))
	case 127:
		if _, err := io.ReadFull(r, b[:8]); err != nil {
			return h, err
		}
		h.length = binary.BigEndian.Uint64(b[:8])
		if h.length>>63 != 0 {
			return h, &protocolError{"64-bit length with the top bit set"}
		}
	}
	if h.masked {
		if _, err := io.ReadFull(r, h.mask[:]); err != nil {
			return h, err
		}
	}
	if h.length > maxPayload {
		return h, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooBig, h.length, maxPayload)
	}
	return h, nil
}

// readPayload reads and unmasks the frame's payload.
func readPayload(r *bufio.Reader, h frameHeader) ([]byte, error) {
	p := make([]byte, h.length)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	if h.masked {
		for i := range p {
			p[i] ^= h.mask[i&3]
		}
	}
	return p, nil
}

// appendFrame appends one unmasked (server-to-client) frame to dst.
func appendFrame(dst []byte, fin bool, opcode byte, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	dst = append(dst, b0)
	n := len(payload)
	switch {
	case n <= 125:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// appendMessage appends a data message fragmented into frames of at most
// frameSize payload bytes (API Gateway fragments what it sends at 32 KB).
func appendMessage(dst []byte, opcode byte, msg []byte, frameSize int) []byte {
	op := opcode
	for {
		n := min(len(msg), frameSize)
		last := n == len(msg)
		dst = appendFrame(dst, last, op, msg[:n])
		if last {
			return dst
		}
		msg = msg[n:]
		op = opContinuation
	}
}

// closePayload builds a close frame payload; code 0 or CloseNoStatus means
// no status (empty payload).
func closePayload(code int, reason string) []byte {
	if code == 0 || code == CloseNoStatus || code == CloseAbnormal {
		return nil
	}
	if len(reason) > maxControlPayloadLen-2 {
		reason = reason[:maxControlPayloadLen-2]
	}
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return append(p, reason...)
}

// parseClosePayload returns the code and reason of a received close frame;
// an empty payload is CloseNoStatus.
func parseClosePayload(p []byte) (int, string, error) {
	switch len(p) {
	case 0:
		return CloseNoStatus, "", nil
	case 1:
		return 0, "", &protocolError{"close payload of one byte"}
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:]), nil
}

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
