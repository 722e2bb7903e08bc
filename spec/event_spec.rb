# frozen_string_literal: true

RSpec.describe ProcessShared::Event do
  it "starts unset; set, try? and reset change it" do
    e = described_class.new
    expect(e.set?).to be(false)
    expect(e.set).to be(true)
    expect(e.set).to be(true) # no effect, still true
    expect(e.set?).to be(true)
    expect(e.try?).to be(false)
    expect(e.reset).to be(true)
    expect(e.set?).to be(false)
    expect(e.try?).to be(true)
    expect(e.set?).to be(true)
  end

  it "returns from wait at once when set, and false after a timeout when not" do
    e = described_class.new
    expect(e.wait(0)).to be(false)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    expect(e.wait(0.05)).to be(false)
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be >= 0.05
    e.set
    expect([e.wait, e.wait(0), e.wait(1)]).to eq([true, true, true])
  end

  it "releases every waiting process and thread when set in another process" do
    e = described_class.new
    waiting = ProcessShared::CountDownLatch.new(4)
    pids = Array.new(3) do
      fork_child do
        waiting.count_down
        exit!(2) unless e.wait(30)
      end
    end
    thread = Thread.new do
      waiting.count_down
      e.wait(30)
    end
    expect(waiting.wait(10)).to be(true)
    setter = fork_child { e.set }
    wait_children(pids + [setter])
    expect(thread.value).to be(true)
  end

  it "releases waiters even when reset right after set" do
    e = described_class.new
    t = Thread.new { e.wait(30) }
    sleep 0.001 until t.status == "sleep" # in the wait, GVL released: its starting point is taken
    e.set
    e.reset
    expect(t.value).to be(true)
    expect(e.set?).to be(false)
  end

  it "rejects bad arguments and raises ClosedError after close" do
    e = described_class.new
    expect { described_class.new(1) }.to raise_error(ArgumentError)
    expect { e.wait(-1) }.to raise_error(ArgumentError)
    expect { e.wait(Float::NAN) }.to raise_error(ArgumentError)
    expect { e.wait("1") }.to raise_error(ArgumentError)
    expect { e.wait(1, 2) }.to raise_error(ArgumentError)
    expect(e.inspect).to eq("#<ProcessShared::Event set=false>")
    e.close
    e.close
    expect(e).to be_closed
    expect(e.inspect).to eq("#<ProcessShared::Event (closed)>")
    %i[set try? reset set? wait].each do |m|
      expect { e.public_send(m) }.to raise_error(ProcessShared::ClosedError)
    end
    expect(described_class.open { |x| x.set && x }).to be_closed
  end
end
