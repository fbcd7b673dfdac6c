// Package pth reads and writes the checkpoint files PyTorch users
// exchange, in pure Go, so that trained models move between PyTorch and
// this project in both directions without Python.
//
// It reads torch.save's zip format (PyTorch 1.6 and later), its legacy
// format (PyTorch 0.4 to 1.5, in which the original models were saved),
// plain pickles of tensors and safetensors files, whatever the file is
// called: Load tells them apart by content. It writes the zip format
// (loadable by every PyTorch since 1.6, also with weights_only=True), the
// legacy format and safetensors.
//
// Reading is safe with untrusted files. The pickle in a checkpoint could
// name any Python function; here only the handful of PyTorch types and
// rebuild functions a checkpoint needs are allowed, each implemented in Go
// as a data constructor, and any other global (os.system, builtins.eval,
// a model class) is refused with an error naming it. Every length, size
// and offset is checked against the file before anything is allocated:
// storages cannot claim more bytes than the file holds, tensors cannot
// reach outside their storage, and the memory a file makes the reader
// allocate is bounded by a small multiple of its size. Corrupt input gives
// an error, never a panic.
//
// Tensors come out contiguous: views (storage offsets, strides, several
// tensors sharing a storage) are copied out element by element, and
// nn.Parameters load as plain tensors, as state_dict() gives them anyway.
// Writing gives every tensor its own storage (a *Tensor that appears twice
// shares one).
//
// Written pickles use protocol 2 and only the opcodes and globals of
// PyTorch's weights_only unpickler. One caveat is PyTorch's own: a Python
// float (best_dice, a learning rate) is a BINFLOAT opcode, which the
// weights_only unpickler accepts from PyTorch 2.0 on but not in 1.13, so
// there such files load with weights_only=False only, as files torch.save
// writes do. State dicts keep their "_metadata" of module versions.
//
// This package knows PyTorch's file formats, not any training script's
// checkpoint layout. Checkpoint and Load/Save hold a file as it is: the
// state dict, with a "module." key prefix (DataParallel's) taken off and
// put back, and the dict of other entries around it, in file order, or
// the metadata strings of a safetensors file; what the entries mean is
// for the caller (package models reads the original's). ReadValue and
// WriteValue give access to any pickled value made of the Python types
// listed with Dict.
package pth
