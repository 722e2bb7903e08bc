# frozen_string_literal: true

module ProcessShared
  # Many readers or one writer, across processes (concurrent-ruby's +ReadWriteLock+ names). A waiting
  # writer is not starved by a stream of readers: once it waits, new readers wait behind it.
  #
  #   config = ProcessShared::ReadWriteLock.new
  #   config.with_read_lock { read_settings }       # many processes at once
  #   config.with_write_lock { reload_settings }    # alone
  #
  # Native methods: +acquire_read_lock+, +release_read_lock+, +try_read_lock(timeout = nil)+,
  # +with_read_lock { }+, +acquire_write_lock+, +release_write_lock+, +try_write_lock(timeout = nil)+,
  # +with_write_lock(on_owner_dead: nil) { }+, +write_locked?+, +has_waiters?+, +close+, +closed?+,
  # +inspect+. Acquire and release return true; +try_*+ return true or false (without a timeout, or with
  # 0, they do not wait).
  # Read locks are held per thread and may be taken several times (released as often): a thread holding one
  # takes another at once, even past a waiting writer. Releasing a lock the calling thread does not hold,
  # taking the write lock twice, or taking one kind while holding the write lock (or the write lock while
  # holding a read lock) raises {ProcessError}; the +try_*+ methods answer false instead.
  #
  # Owner death: a writer that dies holding the lock (SIGKILL, or its thread ends) never blocks anyone for
  # good. The next writer gets {OwnerDeadError} holding the write lock, so it can repair the data (one
  # writer per death). Readers get in within about 200 ms; until a writer has taken the lock over, each
  # reader gets {OwnerDeadError} holding a read lock (the data may be half-written): release it, and take
  # the write lock to repair. +with_*_lock+ release the lock before raising it. Read locks of a dead
  # process, or of a thread that ended, are released silently.
  #
  #   begin
  #     rw.with_read_lock { use(data) }
  #   rescue ProcessShared::OwnerDeadError
  #     rw.with_write_lock(on_owner_dead: ->(_) { repair(data) }) {} # the one writer told of the death repairs
  #     retry
  #   end
  #
  # Blocking calls release the GVL and are interruptible. Each lock maps 64 KiB of its own (room for 1023
  # reader processes at once).
  class ReadWriteLock
    extend Openable

    # @!method with_write_lock(on_owner_dead: nil)
    #   Takes the write lock, runs the block, releases it (also when the block raises), and answers the
    #   block's value. After a take-over from a writer that died holding it, +on_owner_dead+ works as for
    #   {Mutex#synchronize}: called with the {OwnerDeadError} while the write lock is held (repair, as before
    #   +pthread_mutex_consistent+), then the block runs; without it the lock is released and
    #   {OwnerDeadError} raised without running the block. Once a writer has taken the lock over, readers
    #   are no longer told of the death.
    #   @param on_owner_dead [#call, nil] called with the {OwnerDeadError}, holding the write lock
    #   @return [Object] the block's value
    #   @raise [TypeError] if +on_owner_dead+ does not respond to +call+
  end
end
