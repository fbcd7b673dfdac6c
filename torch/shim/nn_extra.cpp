// Calls that module stores and layers need beyond plain operations.
#include "shim.hpp"

extern "C" {

// Replacing a tensor's data in place, so that moving a model to another
// device or dtype keeps every handle to its parameters valid.
et_error et_set_data(et_tensor t, et_tensor src) { ET_TRY(t->t.set_data(src->t)) }

// Integer increments: an integer tensor rejects a floating-point scalar, and
// batch normalisation counts its batches in an int64 buffer.
et_error et_add_int_(et_tensor t, int64_t v) { ET_TRY(t->t.add_(v)) }

}  // extern "C"
