# frozen_string_literal: true

module ProcessShared
  # Resets per-process state (the cached pid, the forking thread's held-lock records) in a forked child.
  # +Kernel#fork+, +Process.fork+ and +IO.popen("-")+ all go through +Process._fork+ (Ruby >= 3.1);
  # +Process.daemon+ does not, so it is hooked too. +pthread_atfork+ handlers in the extension cover forks
  # made by C code.
  module ForkHook
    # +Process._fork+: forks; in the child, resets the per-process state before anything else runs.
    # @return [Integer] the child's pid in the parent, 0 in the child
    def _fork
      pid = super
      ProcessShared._after_fork_child if pid.zero?
      pid
    end

    # +Process.daemon+ (which forks without +Process._fork+): detaches, then resets the per-process state.
    # @param args [Array] +Process.daemon+'s arguments (+nochdir+, +noclose+)
    # @return [Integer] 0, as +Process.daemon+
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
    # The thread's block, wrapped so that the thread's held-lock records are marked however it ends.
    # @param block [Proc, nil] the block given to +Thread.new+ (nil: none, which +Thread.new+ refuses)
    # @return [Proc, nil]
    def self.wrap(block)
      return block unless block

      proc do |*args|
        block.call(*args)
      ensure
        Thread.handle_interrupt(Object => :never) { ProcessShared._thread_ended }
      end
    end

    # Thread.new / Thread#initialize (also for subclasses that call super): runs the block wrapped by {.wrap}.
    def initialize(*args, &block)
      super(*args, &ThreadEndHook.wrap(block))
    end
    ruby2_keywords(:initialize)

    # Thread.start / Thread.fork, which do not call initialize.
    module Starters
      # +Thread.start+: starts a thread running the block wrapped by {ThreadEndHook.wrap}.
      # @return [Thread]
      def start(*args, &block)
        super(*args, &ThreadEndHook.wrap(block))
      end
      ruby2_keywords(:start)

      # +Thread.fork+ (the same as +Thread.start+).
      # @return [Thread]
      def fork(*args, &block)
        super(*args, &ThreadEndHook.wrap(block))
      end
      ruby2_keywords(:fork)
    end
  end
  # In blocks: YARD's mixin handler would fail on ::Thread, or file the singleton's prepend under ProcessShared.
  Thread.class_exec { prepend(ThreadEndHook) }
  Thread.singleton_class.class_exec { prepend(ThreadEndHook::Starters) }

  # The +TracePoint(:thread_end)+ that marks what an ending thread still holds (enabled on load).
  THREAD_END_HOOK = TracePoint.new(:thread_end) { ProcessShared._thread_ended }
  THREAD_END_HOOK.enable
end
