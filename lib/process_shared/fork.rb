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
  # A Ruby thread that ends while holding a Mutex (taken with +lock+), a Monitor or a ReadWriteLock: its
  # process marks the lock so that the next acquirer, in any process, gets it with OwnerDeadError. Runs in
  # the ending thread, however it ends: TracePoint(:thread_end) fires only when the block returns, so each
  # thread's block is also wrapped in an +ensure+ (which a raise or Thread#kill runs too). Marking is
  # idempotent: the records are taken once.
  module ThreadEndHook
    def self.wrap(block)
      return block unless block

      proc do |*args|
        block.call(*args)
      ensure
        Thread.handle_interrupt(Object => :never) { ProcessShared._thread_ended }
      end
    end

    # Thread.new / Thread#initialize (also for subclasses that call super).
    def initialize(*args, &block)
      super(*args, &ThreadEndHook.wrap(block))
    end
    ruby2_keywords(:initialize)

    # Thread.start / Thread.fork, which do not call initialize.
    module Starters
      def start(*args, &block)
        super(*args, &ThreadEndHook.wrap(block))
      end
      ruby2_keywords(:start)

      def fork(*args, &block)
        super(*args, &ThreadEndHook.wrap(block))
      end
      ruby2_keywords(:fork)
    end
  end
  Thread.prepend(ThreadEndHook)
  Thread.singleton_class.prepend(ThreadEndHook::Starters)

  THREAD_END_HOOK = TracePoint.new(:thread_end) { ProcessShared._thread_ended }
  THREAD_END_HOOK.enable
end
