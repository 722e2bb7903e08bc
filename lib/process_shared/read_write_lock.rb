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

    # @!method initialize
    #   A new lock, free (+name:+, +mode:+, +create:+ as in {Named}).
    #   @raise [ArgumentError] if given any argument

    # @!method acquire_read_lock
    #   Takes a read lock for the calling thread (fiber), waiting while a writer holds or waits for the lock
    #   (at once if the thread holds a read lock already: they are counted).
    #   @return [true]
    #   @raise [ProcessError] if the calling thread holds the write lock
    #   @raise [OwnerDeadError] holding a read lock, if a writer died holding the lock and no writer took it
    #     over since
    #   @raise [ClosedError] if closed

    # @!method release_read_lock
    #   Releases one of the calling thread's read locks.
    #   @return [true]
    #   @raise [ProcessError] if the calling thread holds no read lock
    #   @raise [ClosedError] if closed

    # @!method try_read_lock(timeout = nil)
    #   {#acquire_read_lock}, waiting at most +timeout+ seconds. False at once if the calling thread holds
    #   the write lock.
    #   @param timeout [Numeric, nil] seconds (nil or 0: do not wait)
    #   @return [Boolean] whether a read lock was taken
    #   @raise [ArgumentError] for a negative or non-numeric timeout
    #   @raise [OwnerDeadError] as {#acquire_read_lock}
    #   @raise [ClosedError] if closed

    # @!method with_read_lock
    #   Runs the block holding a read lock, released after (unless the block released it).
    #   @yield holding a read lock
    #   @return [Object] the block's value
    #   @raise [ThreadError] without a block
    #   @raise [ProcessError] if the calling thread holds the write lock
    #   @raise [OwnerDeadError] as {#acquire_read_lock}, but with the read lock released and the block not run
    #   @raise [ClosedError] if closed

    # @!method acquire_write_lock
    #   Takes the write lock for the calling thread (fiber), waiting while anyone holds the lock.
    #   @return [true]
    #   @raise [ProcessError] if the calling thread holds the write lock or a read lock
    #   @raise [OwnerDeadError] holding the write lock, if the writer before died holding it
    #   @raise [ClosedError] if closed

    # @!method release_write_lock
    #   Releases the write lock.
    #   @return [true]
    #   @raise [ProcessError] unless the calling thread holds it
    #   @raise [ClosedError] if closed

    # @!method try_write_lock(timeout = nil)
    #   {#acquire_write_lock}, waiting at most +timeout+ seconds. False at once if the calling thread holds
    #   the write lock or a read lock.
    #   @param timeout [Numeric, nil] seconds (nil or 0: do not wait)
    #   @return [Boolean] whether the write lock was taken
    #   @raise [ArgumentError] for a negative or non-numeric timeout
    #   @raise [OwnerDeadError] holding the write lock, if the writer before died holding it
    #   @raise [ClosedError] if closed

    # @!method with_write_lock(on_owner_dead: nil)
    #   Takes the write lock, runs the block, releases it (also when the block raises), and answers the
    #   block's value. After a take-over from a writer that died holding it, +on_owner_dead+ works as for
    #   {Mutex#synchronize}: called with the {OwnerDeadError} while the write lock is held (repair, as before
    #   +pthread_mutex_consistent+), then the block runs; without it the lock is released and
    #   {OwnerDeadError} raised without running the block. Once a writer has taken the lock over, readers
    #   are no longer told of the death.
    #   @param on_owner_dead [#call, nil] called with the {OwnerDeadError}, holding the write lock
    #   @yield holding the write lock
    #   @return [Object] the block's value
    #   @raise [ThreadError] without a block
    #   @raise [ProcessError] if the calling thread holds the write lock or a read lock
    #   @raise [OwnerDeadError] after a take-over, without +on_owner_dead+ (the lock released first)
    #   @raise [TypeError] if +on_owner_dead+ does not respond to +call+
    #   @raise [ClosedError] if closed

    # @!method write_locked?
    #   @return [Boolean] whether a thread of any process holds the write lock
    #   @raise [ClosedError] if closed

    # @!method has_waiters?
    #   @return [Boolean] whether anyone waits for the lock
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the lock. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (readers, write_locked, writer pid, waiters), read without blocking.
    #   @return [String]
  end
end
