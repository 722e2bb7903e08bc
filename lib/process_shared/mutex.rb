# frozen_string_literal: true

module ProcessShared
  # A mutex in shared memory, owned by one thread of one process at a time.
  #
  #   mutex = ProcessShared::Mutex.new
  #   fork { mutex.synchronize { ... } }
  #
  # Native methods: +lock+ (raises {ProcessError} if the calling thread already holds it), +unlock+
  # (raises {ProcessError} unless the calling thread holds it), +try_lock(timeout = nil)+, +locked?+,
  # +owned?+, +synchronize(on_owner_dead: nil)+ (below), +owner_pid+, +close+, +closed?+, +inspect+.
  # Blocking calls release the GVL and are interruptible (Thread#raise, Thread#kill, Timeout, Ctrl-C).
  class Mutex
    extend Openable
    include Sleep

    # @!method initialize
    #   A new, unlocked mutex (+name:+, +mode:+, +create:+ as in {Named}).
    #   @raise [ArgumentError] if given any argument

    # @!method lock
    #   Takes the lock for the calling thread (fiber), waiting while another holds it.
    #   @return [self]
    #   @raise [ProcessError] if the calling thread already holds it
    #   @raise [OwnerDeadError] holding the lock, if its owner died holding it
    #   @raise [ClosedError] if closed

    # @!method unlock
    #   Releases the lock.
    #   @return [self]
    #   @raise [ProcessError] unless the calling thread of this process holds it
    #   @raise [ClosedError] if closed

    # @!method try_lock(timeout = nil)
    #   Takes the lock if it is free, or becomes free within +timeout+ seconds. False at once if the calling
    #   thread holds it already.
    #   @param timeout [Numeric, nil] seconds (nil or 0: do not wait)
    #   @return [Boolean] whether the lock was taken
    #   @raise [ArgumentError] for a negative or non-numeric timeout
    #   @raise [OwnerDeadError] holding the lock, if its owner died holding it
    #   @raise [ClosedError] if closed

    # @!method locked?
    #   @return [Boolean] whether any thread of any process holds it (never blocks)
    #   @raise [ClosedError] if closed

    # @!method owned?
    #   @return [Boolean] whether the calling thread (fiber) of this process holds it
    #   @raise [ClosedError] if closed

    # @!method synchronize(on_owner_dead: nil)
    #   Locks, runs the block, unlocks (also when the block raises), and answers the block's value.
    #
    #   When the previous owner died holding the lock (see {OwnerDeadError}), this call takes it over.
    #   Without +on_owner_dead+ it then unlocks and raises {OwnerDeadError} without running the block.
    #   With it, the data the lock protects can be repaired without a hand-written
    #   +lock+/+rescue+/+ensure+: the handler is called with the {OwnerDeadError} while the lock is held
    #   (as a C program repairs the data before +pthread_mutex_consistent+), then the block runs as usual
    #   and the lock is released after it. If the handler raises, the lock is released, the block does not
    #   run, and its exception propagates; later lockers are not told of the death again, so a handler
    #   that cannot repair should mark the data unusable itself.
    #
    #     mutex.synchronize(on_owner_dead: ->(e) { rebuild(state, dead_pid: e.pid) }) { update(state) }
    #
    #   @param on_owner_dead [#call, nil] called with the {OwnerDeadError}, holding the lock, after a take-over
    #   @yield with the lock held
    #   @return [Object] the block's value
    #   @raise [OwnerDeadError] after a take-over, without +on_owner_dead+ (the lock released first)
    #   @raise [ProcessError] if the calling fiber already holds it
    #   @raise [ThreadError] without a block
    #   @raise [TypeError] if +on_owner_dead+ does not respond to +call+

    # @!method owner_pid
    #   @return [Integer, nil] pid of the process whose thread holds it; nil when unlocked
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the mutex. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (owner pid, whether the caller owns it, waiters), read without blocking.
    #   @return [String]
  end
end
