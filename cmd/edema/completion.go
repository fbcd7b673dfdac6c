package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The shell completion scripts ask edema itself what may come next:
// urfave/cli answers --generate-bash-completion with the commands, or with
// a command's flags when the word being completed starts with "-".
const bashCompletion = `# edema completion for bash: source <(edema completion bash)
_edema_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == -* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _edema_complete edema
`

// zsh runs the bash function through its bash completion layer.
const zshCompletion = `# edema completion for zsh: source <(edema completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
` + bashCompletion

// completionCommand prints a completion script for a shell.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Completes edema's commands and their flags. Load it in the current shell with\n" +
			"  source <(edema completion bash)      (or zsh)\n" +
			"  edema completion fish | source\n" +
			"or save it where the shell loads completions from.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return &usageErr{fmt.Errorf("completion: expected one of bash, zsh, fish, got %d arguments", c.NArg())}
			}
			switch shell := c.Args().First(); shell {
			case "bash":
				_, err := fmt.Fprint(c.App.Writer, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(c.App.Writer, zshCompletion)
				return err
			case "fish":
				script, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("completion: %w", err)
				}
				_, err = fmt.Fprint(c.App.Writer, script)
				return err
			default:
				return &usageErr{fmt.Errorf("completion: unknown shell %q: want bash, zsh or fish", shell)}
			}
		},
	}
}
