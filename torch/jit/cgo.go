package jit

// The same shim as package torch, through the same two ways of finding it
// (cgo_checkout.go, cgo_pkgconfig.go). Every function of edema_jit.h is
// noescape and nocallback, as in torch/cgo.go; torch's
// TestShimFunctionsAnnotated checks the list.

/*
#cgo CFLAGS: -I${SRCDIR}/..
#cgo LDFLAGS: -Wl,--enable-new-dtags
#cgo noescape et_module_load_bytes
#cgo nocallback et_module_load_bytes
#cgo noescape et_module_save_bytes
#cgo nocallback et_module_save_bytes
#cgo noescape et_module_free
#cgo nocallback et_module_free
#cgo noescape et_module_methods
#cgo nocallback et_module_methods
#cgo noescape et_module_schema
#cgo nocallback et_module_schema
#cgo noescape et_module_run
#cgo nocallback et_module_run
#cgo noescape et_module_named_tensors
#cgo nocallback et_module_named_tensors
#cgo noescape et_module_train
#cgo nocallback et_module_train
#cgo noescape et_module_is_training
#cgo nocallback et_module_is_training
#cgo noescape et_module_to
#cgo nocallback et_module_to
#cgo noescape et_ivalue_free
#cgo nocallback et_ivalue_free
#cgo noescape et_ivalue_none
#cgo nocallback et_ivalue_none
#cgo noescape et_ivalue_tensor
#cgo nocallback et_ivalue_tensor
#cgo noescape et_ivalue_double
#cgo nocallback et_ivalue_double
#cgo noescape et_ivalue_int
#cgo nocallback et_ivalue_int
#cgo noescape et_ivalue_bool
#cgo nocallback et_ivalue_bool
#cgo noescape et_ivalue_string
#cgo nocallback et_ivalue_string
#cgo noescape et_ivalue_tuple
#cgo nocallback et_ivalue_tuple
#cgo noescape et_ivalue_list
#cgo nocallback et_ivalue_list
#cgo noescape et_ivalue_dict
#cgo nocallback et_ivalue_dict
#cgo noescape et_ivalue_kind
#cgo nocallback et_ivalue_kind
#cgo noescape et_ivalue_type
#cgo nocallback et_ivalue_type
#cgo noescape et_ivalue_to_tensor
#cgo nocallback et_ivalue_to_tensor
#cgo noescape et_ivalue_to_double
#cgo nocallback et_ivalue_to_double
#cgo noescape et_ivalue_to_int
#cgo nocallback et_ivalue_to_int
#cgo noescape et_ivalue_to_bool
#cgo nocallback et_ivalue_to_bool
#cgo noescape et_ivalue_to_string
#cgo nocallback et_ivalue_to_string
#cgo noescape et_ivalue_len
#cgo nocallback et_ivalue_len
#cgo noescape et_ivalue_item
#cgo nocallback et_ivalue_item
#cgo noescape et_ivalue_dict_entry
#cgo nocallback et_ivalue_dict_entry
*/
import "C"
