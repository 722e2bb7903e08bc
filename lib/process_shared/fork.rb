# frozen_string_literal: true

module ProcessShared
  # Resets per-process state (the cached pid, the forking thread's held-lock records) in a forked child.
  # +Kernel#fork+, +Process.fork+ and +IO.popen("-")+ all go through +Process._fork+ (Ruby >= 3.1);
  # +Process.daemon+ does not, so it is hooked too. +pthread_atfork+ handlers in the extension cover forks
  # made by C code.
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

module ProcessShared
  # A Ruby thread that ends while holding a Mutex (taken with +lock+) or a Monitor: its process marks the lock
  # so that the next acquirer, in any process, gets it with OwnerDeadError. Runs in the ending thread.
  THREAD_END_HOOK = TracePoint.new(:thread_end) { ProcessShared._thread_ended }
  THREAD_END_HOOK.enable
end
