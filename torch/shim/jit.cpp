// TorchScript modules and the values their methods take and return: one
// libtorch call each.
#include <torch/script.h>

#include <iterator>
#include <sstream>
#include <string>

#include "edema_jit.h"
#include "shim.hpp"

struct et_module_s {
  torch::jit::Module m;
};

struct et_ivalue_s {
  c10::IValue v;
};

namespace {

et_ivalue wrap_ivalue(c10::IValue v) { return new et_ivalue_s{std::move(v)}; }

c10::Device device_of(int dev_type, int dev_index) {
  return dev_type == 1 ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(dev_index)) : c10::Device(c10::kCPU);
}

// names_string joins names, each followed by '\n', into a malloc'd string.
template <typename Names>
char *names_string(const Names &names) {
  std::string joined;
  for (const auto &name : names) joined += name + "\n";
  return et_message(joined.c_str());
}

// common_type is the type TorchScript gives a container of the items: their
// unified type without tensor shapes (a List[Tensor] is not a list of
// tensors of one size), or Any when they have none in common.
c10::TypePtr common_type(const et_ivalue *items, int64_t n, const c10::TypePtr &empty) {
  if (n == 0) return empty;
  c10::TypePtr t = c10::unshapedType(items[0]->v.type());
  for (int64_t i = 1; i < n; i++) {
    auto u = c10::unifyTypes(t, c10::unshapedType(items[i]->v.type()));
    if (!u) return c10::AnyType::get();
    t = *u;
  }
  return t;
}

void check_index(int64_t i, size_t n) {
  TORCH_CHECK(i >= 0 && static_cast<size_t>(i) < n, "index ", i, " out of range for ", n, " items");
}

}  // namespace

extern "C" {

et_error et_module_load_bytes(const void *data, size_t n, int dev_type, int dev_index, et_module *out) {
  ET_TRY(std::istringstream in(std::string(static_cast<const char *>(data), n));
         *out = new et_module_s{torch::jit::load(in, device_of(dev_type, dev_index))})
}

et_error et_module_save_bytes(et_module m, void **data, size_t *n) {
  ET_TRY(std::ostringstream out; m->m.save(out); const std::string s = out.str();
         void *buf = std::malloc(s.size() > 0 ? s.size() : 1); TORCH_CHECK(buf != nullptr, "out of memory");
         std::memcpy(buf, s.data(), s.size()); *data = buf; *n = s.size())
}

void et_module_free(et_module m) { delete m; }

et_error et_module_methods(et_module m, char **out) {
  ET_TRY(std::vector<std::string> names; for (const auto &method : m->m.get_methods()) names.push_back(method.name());
         *out = names_string(names))
}

et_error et_module_schema(et_module m, const char *method, char **out) {
  ET_TRY(std::ostringstream s; s << m->m.get_method(method).function().getSchema(); *out = et_message(s.str().c_str()))
}

et_error et_module_run(et_module m, const char *method, const et_ivalue *args, int64_t n, et_ivalue *out) {
  ET_TRY(std::vector<c10::IValue> stack; stack.reserve(static_cast<size_t>(n));
         for (int64_t i = 0; i < n; i++) stack.push_back(args[i]->v);
         *out = wrap_ivalue(m->m.get_method(method)(std::move(stack))))
}

et_error et_module_named_tensors(et_module m, int buffers, et_tensor **tensors, char **names, int64_t *n) {
  ET_TRY(std::vector<std::string> keys; std::vector<at::Tensor> values;
         if (buffers != 0) {
           for (const auto &item : m->m.named_buffers(true)) keys.push_back(item.name), values.push_back(item.value);
         } else {
           for (const auto &item : m->m.named_parameters(true)) keys.push_back(item.name), values.push_back(item.value);
         } auto *ts = static_cast<et_tensor *>(std::malloc(sizeof(et_tensor) * (values.size() > 0 ? values.size() : 1)));
         TORCH_CHECK(ts != nullptr, "out of memory");
         for (size_t i = 0; i < values.size(); i++) ts[i] = et_wrap(values[i]);
         *tensors = ts; *names = names_string(keys); *n = static_cast<int64_t>(values.size()))
}

et_error et_module_train(et_module m, int on) { ET_TRY(m->m.train(on != 0)) }

et_error et_module_is_training(et_module m, int *out) { ET_TRY(*out = m->m.is_training() ? 1 : 0) }

et_error et_module_to(et_module m, int dev_type, int dev_index) { ET_TRY(m->m.to(device_of(dev_type, dev_index))) }

void et_ivalue_free(et_ivalue v) { delete v; }

et_error et_ivalue_none(et_ivalue *out) { ET_TRY(*out = wrap_ivalue(c10::IValue())) }

et_error et_ivalue_tensor(et_tensor t, et_ivalue *out) { ET_TRY(*out = wrap_ivalue(c10::IValue(t->t))) }

et_error et_ivalue_double(double v, et_ivalue *out) { ET_TRY(*out = wrap_ivalue(c10::IValue(v))) }

et_error et_ivalue_int(int64_t v, et_ivalue *out) { ET_TRY(*out = wrap_ivalue(c10::IValue(v))) }

et_error et_ivalue_bool(int v, et_ivalue *out) { ET_TRY(*out = wrap_ivalue(c10::IValue(v != 0))) }

et_error et_ivalue_string(const char *s, et_ivalue *out) { ET_TRY(*out = wrap_ivalue(c10::IValue(std::string(s)))) }

et_error et_ivalue_tuple(const et_ivalue *items, int64_t n, et_ivalue *out) {
  ET_TRY(std::vector<c10::IValue> elements; elements.reserve(static_cast<size_t>(n));
         for (int64_t i = 0; i < n; i++) elements.push_back(items[i]->v);
         *out = wrap_ivalue(c10::ivalue::Tuple::create(std::move(elements))))
}

et_error et_ivalue_list(const et_ivalue *items, int64_t n, et_ivalue *out) {
  ET_TRY(c10::impl::GenericList list(common_type(items, n, c10::TensorType::get()));
         list.reserve(static_cast<size_t>(n)); for (int64_t i = 0; i < n; i++) list.push_back(items[i]->v);
         *out = wrap_ivalue(c10::IValue(std::move(list))))
}

et_error et_ivalue_dict(const et_ivalue *keys, const et_ivalue *values, int64_t n, et_ivalue *out) {
  ET_TRY(c10::impl::GenericDict dict(common_type(keys, n, c10::StringType::get()),
                                     common_type(values, n, c10::TensorType::get()));
         for (int64_t i = 0; i < n; i++) dict.insert_or_assign(keys[i]->v, values[i]->v);
         *out = wrap_ivalue(c10::IValue(std::move(dict))))
}

et_error et_ivalue_kind(et_ivalue v, int *out) {
  ET_TRY(const auto &x = v->v; *out = x.isNone()         ? 0
                                      : x.isTensor()     ? 1
                                      : x.isDouble()     ? 2
                                      : x.isInt()        ? 3
                                      : x.isBool()       ? 4
                                      : x.isString()     ? 5
                                      : x.isTuple()      ? 6
                                      : x.isList()       ? 7
                                      : x.isGenericDict() ? 8
                                                         : 9)
}

et_error et_ivalue_type(et_ivalue v, char **out) { ET_TRY(*out = et_message(v->v.type()->annotation_str().c_str())) }

et_error et_ivalue_to_tensor(et_ivalue v, et_tensor *out) { ET_TRY(*out = et_wrap(v->v.toTensor())) }

et_error et_ivalue_to_double(et_ivalue v, double *out) { ET_TRY(*out = v->v.toDouble()) }

et_error et_ivalue_to_int(et_ivalue v, int64_t *out) { ET_TRY(*out = v->v.toInt()) }

et_error et_ivalue_to_bool(et_ivalue v, int *out) { ET_TRY(*out = v->v.toBool() ? 1 : 0) }

et_error et_ivalue_to_string(et_ivalue v, char **out) { ET_TRY(*out = et_message(v->v.toStringRef().c_str())) }

et_error et_ivalue_len(et_ivalue v, int64_t *out) {
  ET_TRY(const auto &x = v->v;
         if (x.isTuple()) *out = static_cast<int64_t>(x.toTupleRef().elements().size());
         else if (x.isList()) *out = static_cast<int64_t>(x.toListRef().size());
         else if (x.isGenericDict()) *out = static_cast<int64_t>(x.toGenericDict().size());
         else TORCH_CHECK(false, "a ", x.type()->annotation_str(), " has no items"))
}

et_error et_ivalue_item(et_ivalue v, int64_t i, et_ivalue *out) {
  ET_TRY(const auto &x = v->v; if (x.isTuple()) {
    const auto &elements = x.toTupleRef().elements();
    check_index(i, elements.size());
    *out = wrap_ivalue(elements[static_cast<size_t>(i)]);
  } else {
    TORCH_CHECK(x.isList(), "a ", x.type()->annotation_str(), " is not a tuple or a list");
    const auto items = x.toListRef();
    check_index(i, items.size());
    *out = wrap_ivalue(items[static_cast<size_t>(i)]);
  })
}

et_error et_ivalue_dict_entry(et_ivalue v, int64_t i, et_ivalue *key, et_ivalue *value) {
  ET_TRY(TORCH_CHECK(v->v.isGenericDict(), "a ", v->v.type()->annotation_str(), " is not a dict");
         const auto dict = v->v.toGenericDict(); check_index(i, dict.size()); auto it = dict.begin();
         std::advance(it, i); *key = wrap_ivalue(it->key()); *value = wrap_ivalue(it->value()))
}

}  // extern "C"
