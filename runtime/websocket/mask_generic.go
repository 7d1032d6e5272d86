//go:build !amd64 || purego

package websocket

const useAVX2 = false

func maskAVX2(b []byte, key64 uint64) { panic("websocket: maskAVX2 without AVX2") }
