package distributed

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Env is a process's place in a job, as torchrun describes it in the
// environment.
type Env struct {
	MasterAddr     string // the host of the store (MASTER_ADDR)
	MasterPort     int    // its port (MASTER_PORT)
	Rank           int    // this process's rank in the job (RANK)
	WorldSize      int    // the number of processes in the job (WORLD_SIZE)
	LocalRank      int    // its rank among the processes of its machine (LOCAL_RANK)
	LocalWorldSize int    // the number of processes on its machine (LOCAL_WORLD_SIZE)

	// UseAgentStore says that torchrun's agent hosts the TCPStore, so that
	// rank 0 connects to it as a client like every other rank
	// (TORCHELASTIC_USE_AGENT_STORE=True); the keys then live under
	// /worker/attempt_<RestartCount>, as PyTorch's env:// rendezvous puts
	// them.
	UseAgentStore bool
	RestartCount  int // TORCHELASTIC_RESTART_COUNT
}

// EnvFromOS reads the job's environment. ok is false when WORLD_SIZE is
// unset: the process runs alone. A variable that is set but malformed, or
// missing beside the others, is an error naming it.
func EnvFromOS() (env Env, ok bool, err error) {
	return envFrom(os.LookupEnv)
}

func envFrom(lookup func(string) (string, bool)) (env Env, ok bool, err error) {
	if _, set := lookup("WORLD_SIZE"); !set {
		return Env{}, false, nil
	}
	integer := func(name string, dflt int, required bool) int {
		v, set := lookup(name)
		if !set || v == "" {
			if required && err == nil {
				err = fmt.Errorf("distributed: %s is not set (WORLD_SIZE is)", name)
			}
			return dflt
		}
		n, perr := strconv.Atoi(strings.TrimSpace(v))
		if (perr != nil || n < 0) && err == nil {
			err = fmt.Errorf("distributed: %s=%q is not a whole number", name, v)
		}
		return n
	}
	env.WorldSize = integer("WORLD_SIZE", 0, true)
	env.Rank = integer("RANK", 0, true)
	env.LocalRank = integer("LOCAL_RANK", env.Rank, false)
	env.LocalWorldSize = integer("LOCAL_WORLD_SIZE", env.WorldSize, false)
	env.MasterPort = integer("MASTER_PORT", 0, true)
	env.RestartCount = integer("TORCHELASTIC_RESTART_COUNT", 0, false)
	env.MasterAddr, _ = lookup("MASTER_ADDR")
	if env.MasterAddr == "" && err == nil {
		err = fmt.Errorf("distributed: MASTER_ADDR is not set (WORLD_SIZE is)")
	}
	if v, _ := lookup("TORCHELASTIC_USE_AGENT_STORE"); v != "" {
		env.UseAgentStore = strings.EqualFold(v, "true") || v == "1"
	}
	if err != nil {
		return Env{}, false, err
	}
	return env, true, env.validate()
}

func (e Env) validate() error {
	switch {
	case e.WorldSize < 1:
		return fmt.Errorf("distributed: WORLD_SIZE is %d; a job has at least one process", e.WorldSize)
	case e.Rank >= e.WorldSize:
		return fmt.Errorf("distributed: RANK %d is not below WORLD_SIZE %d", e.Rank, e.WorldSize)
	case e.LocalWorldSize < 1 || e.LocalWorldSize > e.WorldSize:
		return fmt.Errorf("distributed: LOCAL_WORLD_SIZE %d is not in [1, WORLD_SIZE %d]", e.LocalWorldSize, e.WorldSize)
	case e.LocalRank >= e.LocalWorldSize:
		return fmt.Errorf("distributed: LOCAL_RANK %d is not below LOCAL_WORLD_SIZE %d", e.LocalRank, e.LocalWorldSize)
	case e.MasterPort < 1 || e.MasterPort > 65535:
		return fmt.Errorf("distributed: MASTER_PORT %d is not a TCP port", e.MasterPort)
	}
	return nil
}

// Environ is the environment that gives a process its place e, in the
// form of os/exec's Cmd.Env entries.
func (e Env) Environ() []string {
	return []string{
		"MASTER_ADDR=" + e.MasterAddr,
		"MASTER_PORT=" + strconv.Itoa(e.MasterPort),
		"RANK=" + strconv.Itoa(e.Rank),
		"WORLD_SIZE=" + strconv.Itoa(e.WorldSize),
		"LOCAL_RANK=" + strconv.Itoa(e.LocalRank),
		"LOCAL_WORLD_SIZE=" + strconv.Itoa(e.LocalWorldSize),
	}
}
