# frozen_string_literal: true

module ProcessShared
  # A mutex in shared memory, owned by one thread of one process at a time.
  #
  #   mutex = ProcessShared::Mutex.new
  #   fork { mutex.synchronize { ... } }
  #
  # Native methods: +lock+ (raises {ProcessError} if the calling thread already holds it), +unlock+
  # (raises {ProcessError} unless the calling thread holds it), +try_lock(timeout = nil)+, +locked?+,
  # +owned?+, +synchronize+, +owner_pid+, +close+, +closed?+, +inspect+. Blocking calls release the GVL and
  # are interruptible (Thread#raise, Thread#kill, Timeout, Ctrl-C).
  class Mutex
    extend Openable
    include Sleep
  end
end
