package sandbox

// AgentPID returns the process id of the running keyferry-agent, or 0 when
// none runs (benchmarks read its /proc/<pid>/status).
func (s *Sandbox) AgentPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agent == nil || s.agent.Process == nil {
		return 0
	}
	return s.agent.Process.Pid
}
