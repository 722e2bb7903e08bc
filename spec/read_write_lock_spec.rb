# frozen_string_literal: true

RSpec.describe ProcessShared::ReadWriteLock do
  let!(:rw) { described_class.new }

  # The block's value in a new thread, or the StandardError it raised.
  def in_thread(&block)
    Thread.new do
      block.call
    rescue StandardError => e
      e
    end.value
  end

  it "lets several processes read at once" do
    inside = ProcessShared::CountDownLatch.new(3)
    pids = Array.new(3) do
      fork_child do
        rw.with_read_lock do
          inside.count_down
          exit!(2) unless inside.wait(10) # all three are inside together
        end
      end
    end
    wait_children(pids)
    expect(rw.write_locked?).to be(false)
  end

  it "keeps a writer alone: readers never see a half-done update, and no write is lost" do
    data = ProcessShared::SharedArray.new(:int64, 2)
    torn = ProcessShared::AtomicInteger.new
    pids = Array.new(4) do |i|
      fork_child do
        1_500.times do |n|
          if (n + i) % 3 == 0
            rw.with_write_lock do
              v = data[0]
              data[0] = v + 1
              data[1] = v + 1
            end
          else
            rw.with_read_lock { torn.increment if data[0] != data[1] }
          end
        end
      end
    end
    wait_children(pids, timeout: 60)
    expect(torn.value).to eq(0)
    expect(data.to_a).to eq([2_000, 2_000])
    expect(rw.inspect).to eq("#<ProcessShared::ReadWriteLock readers=0 write_locked=false waiters=false>")
  end

  it "makes a new reader wait behind a waiting writer (writers are not starved)" do
    rw.acquire_read_lock
    writer = fork_child do
      rw.acquire_write_lock
      rw.release_write_lock
    end
    sleep 0.001 until rw.write_locked? # the writer waits for our read lock to go
    expect(Thread.new { rw.try_read_lock(0.05) }.value).to be(false)
    expect(rw.has_waiters?).to be(true)
    rw.release_read_lock
    wait_child(writer)
    expect(rw.try_read_lock).to be(true)
    rw.release_read_lock
  end

  it "try_read_lock / try_write_lock: false without waiting, or after the timeout" do
    expect(rw.try_write_lock).to be(true)
    expect(Thread.new { [rw.try_read_lock, rw.try_write_lock, rw.try_read_lock(0.02)] }.value)
      .to eq([false, false, false])
    rw.release_write_lock
    expect(rw.try_read_lock(1)).to be(true)
    expect(Thread.new { [rw.try_write_lock, rw.try_write_lock(0.02), rw.try_read_lock] }.value)
      .to eq([false, false, true]) # the thread's read lock stays; it ended holding it
    rw.release_read_lock
    expect(rw.try_write_lock(0)).to be(true) # the ended thread's read lock was given back
    rw.release_write_lock
  end

  it "counts read locks per thread; with_*_lock return the block's value and release on raise" do
    2.times { rw.acquire_read_lock }
    2.times { rw.release_read_lock }
    expect { rw.release_read_lock }.to raise_error(ProcessShared::ProcessError)
    expect(rw.with_read_lock { :r }).to eq(:r)
    expect(rw.with_write_lock { :w }).to eq(:w)
    expect { rw.with_write_lock { raise "boom" } }.to raise_error(RuntimeError, "boom")
    expect { rw.with_read_lock { raise "boom" } }.to raise_error(RuntimeError, "boom")
    expect(rw.try_write_lock).to be(true)
    rw.release_write_lock
    expect { rw.with_read_lock }.to raise_error(ThreadError)
  end

  it "raises ProcessError for misuse, changing nothing" do
    expect { rw.release_write_lock }.to raise_error(ProcessShared::ProcessError)
    rw.acquire_write_lock
    expect { rw.acquire_write_lock }.to raise_error(ProcessShared::ProcessError, /deadlock/)
    expect { rw.acquire_read_lock }.to raise_error(ProcessShared::ProcessError, /deadlock/)
    expect(in_thread { rw.release_write_lock }).to be_a(ProcessShared::ProcessError)
    rw.release_write_lock
    rw.acquire_read_lock
    expect { rw.acquire_write_lock }.to raise_error(ProcessShared::ProcessError, /read lock/)
    expect(in_thread { rw.release_read_lock }).to be_a(ProcessShared::ProcessError)
    rw.release_read_lock
    expect(rw.try_write_lock).to be(true)
    rw.release_write_lock
  end

  it "rejects bad arguments" do
    expect { described_class.new(1) }.to raise_error(ArgumentError)
    expect { rw.try_read_lock(-1) }.to raise_error(ArgumentError)
    expect { rw.try_write_lock(Float::NAN) }.to raise_error(ArgumentError)
    expect { rw.try_write_lock("1") }.to raise_error(ArgumentError)
    expect { rw.try_read_lock(1, 2) }.to raise_error(ArgumentError)
    expect(rw.try_write_lock).to be(true)
    rw.release_write_lock
  end

  it "releases the read locks of a thread that ended holding them" do
    Thread.new { 2.times { rw.acquire_read_lock } }.join
    expect(rw.try_write_lock).to be(true)
    rw.release_write_lock
  end

  it "closes idempotently and raises ClosedError afterwards" do
    rw.close
    rw.close
    expect(rw).to be_closed
    expect(rw.inspect).to eq("#<ProcessShared::ReadWriteLock (closed)>")
    %i[acquire_read_lock release_read_lock try_read_lock acquire_write_lock release_write_lock try_write_lock
       write_locked? has_waiters?].each do |m|
      expect { rw.public_send(m) }.to raise_error(ProcessShared::ClosedError)
    end
    expect { rw.with_read_lock { nil } }.to raise_error(ProcessShared::ClosedError)
    expect(described_class.open { |l| l.with_write_lock { l } }).to be_closed
  end

  it "survives being closed while a thread holds it (the holder can still release)" do
    rw.acquire_write_lock
    rw.close
    expect { rw.release_write_lock }.to raise_error(ProcessShared::ClosedError)
    GC.start
  end
end
