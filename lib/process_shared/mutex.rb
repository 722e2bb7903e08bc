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
  end
end
