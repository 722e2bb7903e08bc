# frozen_string_literal: true

# Checks the test harness itself (spec_helper's ForkHelpers), so other specs can trust it.
RSpec.describe ForkHelpers do
  it "passes when the child finishes cleanly" do
    h = handshake
    pid = fork_child { h.signal("a") }
    expect(h.wait).to eq("a")
    expect(wait_child(pid).exitstatus).to eq(0)
  end

  it "fails the example when the child raises" do
    pid = fork_child do
      $stderr.reopen(File::NULL) # keep the expected backtrace out of the output
      raise "boom"
    end
    expect { wait_child(pid) }.to raise_error(RSpec::Expectations::ExpectationNotMetError, /child \d+ failed/)
  end

  it "fails the example when an expectation fails in the child" do
    pid = fork_child do
      $stderr.reopen(File::NULL)
      expect(1).to eq(2)
    end
    expect { wait_child(pid) }.to raise_error(RSpec::Expectations::ExpectationNotMetError)
  end

  it "kills a child that overruns its deadline" do
    pid = fork_child { sleep 60 }
    expect { wait_child(pid, timeout: 0.3) }.to raise_error(Timeout::Error, /killed/)
    expect { Process.kill(0, pid) }.to raise_error(Errno::ESRCH)
  end

  it "times out a handshake nobody signals" do
    expect { handshake.wait(timeout: 0.1) }.to raise_error(Timeout::Error)
  end
end
