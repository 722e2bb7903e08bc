# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"

# Ownership is per fiber, as for Thread::Mutex and Monitor (Ruby >= 3.0); a thread's end marks what any of
# its fibers holds; under M:N threads (RUBY_MN_THREADS=1, Ruby >= 3.3) records follow the Ruby thread, not
# the native thread it happens to run on.
RSpec.describe "Fibers and M:N threads" do
  # What a lock answers in a second fiber of the thread whose first fiber holds it.
  def in_other_fiber(lock, owned:, try:)
    Fiber.new { [lock.public_send(owned), lock.public_send(try)] }.resume
  end

  it "owns a Mutex per fiber, answering as Thread::Mutex does" do
    ours = ProcessShared::Mutex.new
    theirs = Thread::Mutex.new
    [ours, theirs].each(&:lock)
    expect(in_other_fiber(ours, owned: :owned?, try: :try_lock))
      .to eq(in_other_fiber(theirs, owned: :owned?, try: :try_lock))
    expect(in_other_fiber(ours, owned: :owned?, try: :try_lock)).to eq([false, false])
    expect { Fiber.new { ours.unlock }.resume }.to raise_error(ProcessShared::ProcessError)
    expect(ours.owned?).to be(true)
    ours.unlock
  end

  it "owns a Monitor per fiber, answering as ::Monitor does" do
    require "monitor"
    ours = ProcessShared::Monitor.new
    theirs = ::Monitor.new
    [ours, theirs].each(&:enter)
    expect(in_other_fiber(ours, owned: :mon_owned?, try: :try_enter))
      .to eq(in_other_fiber(theirs, owned: :mon_owned?, try: :try_enter))
    ours.exit
  end

  it "keeps a fiber's read holds its own: a write from another fiber of the thread does not see them as its own" do
    rw = ProcessShared::ReadWriteLock.new
    rw.acquire_read_lock
    expect(Fiber.new { rw.try_write_lock }.resume).to be(false) # a reader is inside: no write, no deadlock error
    expect { Fiber.new { rw.release_read_lock }.resume }.to raise_error(ProcessShared::ProcessError)
    rw.release_read_lock
    expect(rw.try_write_lock).to be(true)
    rw.release_write_lock
  end

  it "marks a lock held by a fiber of a thread that ends, as Ruby releases a Thread::Mutex", timeout: 20 do
    ours = ProcessShared::Mutex.new
    theirs = Thread::Mutex.new
    Thread.new do
      Fiber.new do
        ours.lock
        theirs.lock
      end.resume
    end.join
    expect(theirs.locked?).to be(false)
    expect { ours.try_lock(5) }.to raise_error(ProcessShared::OwnerDeadError)
    expect(ours.owned?).to be(true)
    ours.unlock
  end

  describe "with RUBY_MN_THREADS=1" do
    before { skip "M:N threads need Ruby >= 3.3 (this is #{RUBY_VERSION})" if RUBY_VERSION < "3.3" }

    # A child Ruby with M:N threads: 24 threads each lock a Mutex of their own and end holding it, while
    # the others run on the same few native threads (Thread.pass moves them about). Every lock must come
    # back to the main thread as OwnerDeadError, and the threads must really have shared native threads.
    it "recovers every lock of threads that end holding one while sharing native threads", timeout: 60 do
      script = <<~RUBY
        require "process_shared"
        n = 24
        locks = Array.new(n) { ProcessShared::Mutex.new }
        go = Thread::Queue.new
        natives = Thread::Queue.new
        threads = locks.map do |m|
          Thread.new do
            m.lock
            seen = [Thread.current.native_thread_id]
            go.pop
            20.times { Thread.pass; seen << Thread.current.native_thread_id }
            natives << seen
          end
        end
        n.times { go << true }
        threads.each(&:join)
        ids = Array.new(n) { natives.pop }
        shared = ids.flatten.tally.values.max
        dead = locks.count do |m|
          m.try_lock(5)
          false
        rescue ProcessShared::OwnerDeadError
          m.unlock
          true
        end
        puts "threads=\#{n} dead=\#{dead} most_on_one_native=\#{shared} natives=\#{ids.flatten.uniq.size}"
      RUBY
      env = { "RUBY_MN_THREADS" => "1", "RUBYLIB" => File.expand_path("../lib", __dir__) }
      out, err, status = Open3.capture3(env, RbConfig.ruby, "-e", script)
      expect(status.success?).to be(true), "child failed: #{err}"
      expect(out).to match(/threads=24 dead=24 /)
      natives = out[/natives=(\d+)/, 1].to_i
      expect(natives).to be < 24 # M:N really ran: fewer native threads than Ruby threads
    end
  end
end
