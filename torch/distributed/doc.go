// Package distributed runs collectives between processes on c10d, the
// distributed engine of libtorch that torch.distributed and PyTorch's
// DistributedDataParallel stand on, so that a job of edema processes, or of
// edema processes beside each other under torchrun, meets and reduces
// tensors exactly as PyTorch's own would.
//
// A job is a set of processes, each with a rank in [0, world size). They
// meet through a c10d store: a TCPStore that rank 0 hosts (or torchrun's
// agent, when TORCHELASTIC_USE_AGENT_STORE is set), or a FileStore on a
// shared file system. [Init] reads the environment torchrun sets
// (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE); [Launch] starts the processes of a one-machine job
// with that environment, as torchrun --standalone does.
//
// Tensors on the CPU travel over c10d's Gloo backend. Every rank must issue
// the same collectives in the same order, as in PyTorch. Each one waits at
// most the group's timeout, and every failure (a store that cannot be
// reached, a peer that stopped, a timeout, ranks that disagree on the world
// size) is an *Error naming this process's rank and the cause.
package distributed
