# frozen_string_literal: true

require "io/wait"

# A small, complete Fiber scheduler for the specs (the hooks Ruby >= 3.1 calls): IO.select for readiness,
# a list of timers, and a pipe that other threads write to in +unblock+ (which Thread#join and
# Thread::Queue use). Not efficient; correct enough for tests. No gem provides one here (no RubyGems).
class SpecScheduler
  def initialize
    @readable = {}
    @writable = {}
    @timers = {} # fiber => deadline
    @blocked = {} # fiber => true (waiting for unblock, no timeout)
    @ready = []
    @lock = Thread::Mutex.new
    @wake_r, @wake_w = IO.pipe
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def run
    while @readable.any? || @writable.any? || @timers.any? || @blocked.any? || ready?
      timeout = ready? ? 0 : @timers.values.min&.then { |t| [t - now, 0].max }
      r, w = IO.select(@readable.keys + [@wake_r], @writable.keys, [], timeout)
      @wake_r.read_nonblock(1024, exception: false) if r&.delete(@wake_r)
      resume = []
      r&.each { |io| resume << [@readable.delete(io), IO::READABLE] }
      w&.each { |io| resume << [@writable.delete(io), IO::WRITABLE] }
      t = now
      @timers.select { |_, at| at <= t }.each_key { |f| resume << [f, nil] }
      ready = @lock.synchronize { @ready.slice!(0..) }
      ready.each { |f| resume << [f, nil] }
      resume.each { |f, v| f.transfer(v) if f&.alive? }
    end
  end

  def ready?
    @lock.synchronize { @ready.any? }
  end

  def close
    run
  ensure
    @wake_r.close
    @wake_w.close
  end

  def scheduler_close
    close
  end

  def fiber(&block)
    f = Fiber.new(blocking: false, &block)
    f.transfer
    f
  end

  def io_wait(io, events, timeout)
    fiber = Fiber.current
    @readable[io] = fiber if events.anybits?(IO::READABLE)
    @writable[io] = fiber if events.anybits?(IO::WRITABLE)
    @timers[fiber] = now + timeout if timeout
    main_fiber.transfer
  ensure
    @timers.delete(fiber)
    @readable.delete(io)
    @writable.delete(io)
  end

  def kernel_sleep(duration = nil)
    block(:sleep, duration)
    true
  end

  def block(_blocker, timeout = nil)
    fiber = Fiber.current
    if timeout
      @timers[fiber] = now + timeout
    else
      @blocked[fiber] = true
    end
    main_fiber.transfer
  ensure
    @timers.delete(fiber)
    @blocked.delete(fiber)
  end

  def unblock(_blocker, fiber)
    @lock.synchronize { @ready << fiber }
    @wake_w.write_nonblock(".", exception: false)
  end

  def timeout_after(duration, klass, message)
    fiber = Fiber.current
    timer = self.fiber do
      sleep(duration)
      fiber.raise(klass, message) if fiber&.alive?
    end
    yield duration
  ensure
    fiber = nil
    @timers.delete(timer) if timer
  end

  def process_wait(pid, flags)
    Thread.new { Process::Status.wait(pid, flags) }.value
  end

  def main_fiber
    @main_fiber ||= Thread.current.instance_variable_get(:@spec_scheduler_main) || raise("no main fiber")
  end

  # Run `block` as the root of a scheduler on the current thread; returns when every fiber is done.
  def self.run
    scheduler = new
    Thread.current.instance_variable_set(:@spec_scheduler_main, Fiber.current)
    Fiber.set_scheduler(scheduler)
    yield scheduler
    scheduler.run
  ensure
    Fiber.set_scheduler(nil)
    Thread.current.instance_variable_set(:@spec_scheduler_main, nil)
  end
end
