# frozen_string_literal: true

module ProcessShared
  # Resets per-process state (the cached pid) in a forked child. +Kernel#fork+, +Process.fork+ and
  # +IO.popen("-")+ all go through +Process._fork+ (Ruby >= 3.1); +Process.daemon+ does not, so it is hooked
  # too. A +pthread_atfork+ handler in the extension covers forks made by C code.
  module ForkHook
    def _fork
      pid = super
      ProcessShared._after_fork_child if pid.zero?
      pid
    end

    def daemon(*args)
      result = super
      ProcessShared._after_fork_child
      result
    end
  end
end

Process.singleton_class.prepend(ProcessShared::ForkHook)
