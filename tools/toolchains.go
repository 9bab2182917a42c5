package tools

// toolchainArgs returns the bubblewrap arguments that make the toolchains
// found on this host (and tools.bash.read_only_paths) usable in a call in
// worktree root; hidden lists what the sandbox hides.
func (s *Sandbox) toolchainArgs(root string, hidden []string) []string {
	return nil
}

// toolchainEnv adds the toolchains' variables to the sandbox environment.
func (s *Sandbox) toolchainEnv(env []string) []string {
	return env
}
