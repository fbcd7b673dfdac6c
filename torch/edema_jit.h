/*
 * edema_jit.h: the plain-C interface of the shim's part over TorchScript,
 * the modules torch.jit.script and torch.jit.trace write with
 * torch.jit.save.
 *
 * The conventions are edema_torch.h's: every function that can fail
 * returns an et_error (NULL or a malloc'd message), results come back
 * through out-parameters, and no C++ type crosses this header.
 *
 * An et_module owns a torch::jit::Module; et_module_free releases it. An
 * et_ivalue owns one c10::IValue, the values TorchScript methods take and
 * return (tensors, numbers, strings, tuples, lists, dicts);
 * et_ivalue_free releases it. Containers are built from, and read into,
 * et_ivalue handles of their items; building one copies the items' values
 * (a tensor is shared, as in Python), so the item handles stay the
 * caller's to free.
 */
#ifndef EDEMA_JIT_H
#define EDEMA_JIT_H

#include "edema_torch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_module_s *et_module;
typedef struct et_ivalue_s *et_ivalue;

/* Modules, from and to the bytes of a torch.jit.save file. Loading maps
 * every tensor onto the device (type, index), as torch.jit.load's
 * map_location does. et_module_save_bytes returns a malloc'd buffer the
 * caller frees. */
et_error et_module_load_bytes(const void *data, size_t n, int dev_type, int dev_index, et_module *out);
et_error et_module_save_bytes(et_module m, void **data, size_t *n);
void et_module_free(et_module m);
/* The names of the module's methods, each followed by '\n', malloc'd. */
et_error et_module_methods(et_module m, char **out);
/* The schema of a method, as TorchScript prints it. */
et_error et_module_schema(et_module m, const char *method, char **out);
/* Runs a method on n arguments (self excluded) and returns its result. */
et_error et_module_run(et_module m, const char *method, const et_ivalue *args, int64_t n, et_ivalue *out);
/* The parameters (buffers = 0) or buffers (buffers = 1) of the module and
 * its submodules, by their dotted names: *n tensors in a malloc'd array
 * and their names, each followed by '\n', in a malloc'd string. */
et_error et_module_named_tensors(et_module m, int buffers, et_tensor **tensors, char **names, int64_t *n);
et_error et_module_train(et_module m, int on);
et_error et_module_is_training(et_module m, int *out);
et_error et_module_to(et_module m, int dev_type, int dev_index);

/* Values. Kinds: 0 None, 1 Tensor, 2 float, 3 int, 4 bool, 5 string,
 * 6 tuple, 7 list, 8 dict, 9 anything else (et_ivalue_type names it). */
void et_ivalue_free(et_ivalue v);
et_error et_ivalue_none(et_ivalue *out);
et_error et_ivalue_tensor(et_tensor t, et_ivalue *out);
et_error et_ivalue_double(double v, et_ivalue *out);
et_error et_ivalue_int(int64_t v, et_ivalue *out);
et_error et_ivalue_bool(int v, et_ivalue *out);
et_error et_ivalue_string(const char *s, et_ivalue *out);
et_error et_ivalue_tuple(const et_ivalue *items, int64_t n, et_ivalue *out);
/* A list of the items' common type (List[Tensor], List[int], ...; an empty
 * list is a List[Tensor]). */
et_error et_ivalue_list(const et_ivalue *items, int64_t n, et_ivalue *out);
/* A dict of the keys' and the values' common types. */
et_error et_ivalue_dict(const et_ivalue *keys, const et_ivalue *values, int64_t n, et_ivalue *out);
et_error et_ivalue_kind(et_ivalue v, int *out);
et_error et_ivalue_type(et_ivalue v, char **out);
et_error et_ivalue_to_tensor(et_ivalue v, et_tensor *out);
et_error et_ivalue_to_double(et_ivalue v, double *out);
et_error et_ivalue_to_int(et_ivalue v, int64_t *out);
et_error et_ivalue_to_bool(et_ivalue v, int *out);
et_error et_ivalue_to_string(et_ivalue v, char **out);
/* The number of items of a tuple, a list or a dict. */
et_error et_ivalue_len(et_ivalue v, int64_t *out);
/* Item i of a tuple or a list. */
et_error et_ivalue_item(et_ivalue v, int64_t i, et_ivalue *out);
/* Entry i of a dict, in its insertion order. */
et_error et_ivalue_dict_entry(et_ivalue v, int64_t i, et_ivalue *key, et_ivalue *value);

#ifdef __cplusplus
}
#endif

#endif
