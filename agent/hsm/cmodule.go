//go:build cgo

package hsm

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// The few PKCS#11 types this file needs (the ABI of CK_ULONG, CK_MECHANISM
// and CK_FUNCTION_LIST on Linux; github.com/miekg/pkcs11 holds the rest).
typedef unsigned long kf_ulong;
typedef struct { kf_ulong mechanism; void *parameter; kf_ulong parameter_len; } kf_mechanism;
typedef kf_ulong (*kf_wrap_key)(kf_ulong session, kf_mechanism *mech, kf_ulong wrapping_key,
	kf_ulong key, unsigned char *wrapped, kf_ulong *wrapped_len);
typedef kf_ulong (*kf_get_function_list)(void **list);
// CK_FUNCTION_LIST: CK_VERSION (two bytes), then the function pointers in
// the order of the standard; C_WrapKey is the 61st (index 60).
struct kf_function_list { unsigned char version[2]; void *fn[68]; };
#define KF_C_WRAPKEY 60

static void *kf_wrap_key_of(const char *path) {
	void *lib = dlopen(path, RTLD_LAZY); // the module miekg/pkcs11 loaded: same handle, never closed
	if (lib == NULL) return NULL;
	kf_get_function_list get = (kf_get_function_list)dlsym(lib, "C_GetFunctionList");
	if (get == NULL) return NULL;
	struct kf_function_list *list = NULL;
	if (get((void **)&list) != 0 || list == NULL) return NULL;
	return list->fn[KF_C_WRAPKEY];
}

static void *kf_symbol(const char *path, const char *name) {
	void *lib = dlopen(path, RTLD_LAZY);
	return lib == NULL ? NULL : dlsym(lib, name);
}

static kf_ulong kf_call_wrap_key(void *fn, kf_ulong session, kf_ulong mech, kf_ulong wrapping_key,
	kf_ulong key, unsigned char *wrapped, kf_ulong *wrapped_len) {
	kf_mechanism m = { mech, NULL, 0 };
	return ((kf_wrap_key)fn)(session, &m, wrapping_key, key, wrapped, wrapped_len);
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// The PKCS#11 calls github.com/miekg/pkcs11 v1.1.2 cannot make the way a
// token needs them: C_Initialize's reserved argument must outlive the call
// (a C string), and C_WrapKey must be given a larger buffer than the size
// query answered (NSS softoken under CKM_AES_KEY_WRAP_KWP).

// initArgs holds each module's C_Initialize reserved string, allocated once
// per distinct value and never freed (a module may keep the pointer).
var initArgs sync.Map // string -> unsafe.Pointer

func initReserved(s string) unsafe.Pointer {
	if p, ok := initArgs.Load(s); ok {
		return p.(unsafe.Pointer)
	}
	p, _ := initArgs.LoadOrStore(s, unsafe.Pointer(C.CString(s)))
	return p.(unsafe.Pointer)
}

// wrapKeyFns caches C_WrapKey of each module path.
var wrapKeyFns sync.Map // path -> unsafe.Pointer

func wrapKeyFn(path string) (unsafe.Pointer, error) {
	if p, ok := wrapKeyFns.Load(path); ok {
		return p.(unsafe.Pointer), nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	fn := C.kf_wrap_key_of(cpath)
	if fn == nil {
		return nil, fmt.Errorf("hsm: no C_WrapKey in the function list of %s", path)
	}
	wrapKeyFns.Store(path, fn)
	return fn, nil
}

// exportedWrapKey returns the module's exported C_WrapKey symbol, or nil
// (tests compare it with the function list's entry).
func exportedWrapKey(path string) unsafe.Pointer {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	name := C.CString("C_WrapKey")
	defer C.free(unsafe.Pointer(name))
	return C.kf_symbol(cpath, name)
}

// kwpSlack is what RFC 5649 adds to its input at most: the 8-byte
// integrity block and up to 7 bytes of padding, rounded up.
const kwpSlack = 16

// wrapKeyGrown is C_WrapKey of a mechanism without parameters into a
// buffer of the size query's answer plus slack bytes, for tokens whose size
// query answers short (NSS softoken answers the plaintext length under
// CKM_AES_KEY_WRAP_KWP). It calls the module miekg/pkcs11 loaded from path,
// so sessions and objects are the same.
func wrapKeyGrown(path string, sh pkcs11.SessionHandle, mech uint, wrappingKey, key pkcs11.ObjectHandle, slack int) ([]byte, error) {
	fn, err := wrapKeyFn(path)
	if err != nil {
		return nil, err
	}
	reported, err := wrapKeySizeQuery(path, sh, mech, wrappingKey, key)
	if err != nil {
		return nil, err
	}
	size := reported + slack
	var n C.kf_ulong
	buf := (*C.uchar)(C.calloc(C.size_t(size), 1))
	if buf == nil {
		return nil, pkcs11.Error(pkcs11.CKR_HOST_MEMORY)
	}
	defer func() {
		C.memset(unsafe.Pointer(buf), 0, C.size_t(size))
		C.free(unsafe.Pointer(buf))
	}()
	n = C.kf_ulong(size)
	if rv := C.kf_call_wrap_key(fn, C.kf_ulong(sh), C.kf_ulong(mech), C.kf_ulong(wrappingKey), C.kf_ulong(key), buf, &n); rv != 0 {
		return nil, pkcs11.Error(rv)
	}
	if int(n) > size {
		return nil, fmt.Errorf("hsm: C_WrapKey wrote %d bytes into a %d-byte buffer", n, size)
	}
	return C.GoBytes(unsafe.Pointer(buf), C.int(n)), nil
}

// wrapKeySizeQuery is C_WrapKey with a NULL buffer: the output size the
// module answers.
func wrapKeySizeQuery(path string, sh pkcs11.SessionHandle, mech uint, wrappingKey, key pkcs11.ObjectHandle) (int, error) {
	fn, err := wrapKeyFn(path)
	if err != nil {
		return 0, err
	}
	var n C.kf_ulong
	if rv := C.kf_call_wrap_key(fn, C.kf_ulong(sh), C.kf_ulong(mech), C.kf_ulong(wrappingKey), C.kf_ulong(key), nil, &n); rv != 0 {
		return 0, pkcs11.Error(rv)
	}
	return int(n), nil
}
