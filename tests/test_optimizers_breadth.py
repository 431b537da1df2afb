

@pytest.mark.parametrize("make", [
    lambda: optimizers.Adam(0.01, amsgrad=True, weight_decay=0.1),
    lambda: optimizers.RMSprop(0.01, centered=True, momentum=0.5),
    lambda: optimizers.Nadam(0.01), lambda: optimizers.Adamax(0.01),
    lambda: optimizers.Adagrad(0.1), lambda: optimizers.Adadelta(1.0),
    lambda: optimizers.Lion(0.01),
    lambda: optimizers.SGD(0.1, momentum=0.9, clipnorm=0.5),
    lambda: optimizers.Adam(0.01, global_clipnorm=0.5),
    lambda: optimizers.Adam(0.01, clipvalue=0.1)])
def test_device_arrays_match_numpy(dev, make):
    # On both compiled modules: the same steps on NumPy arrays and on the device's arrays,
    # and the state saved from the device restores on the host.
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((7, 3)).astype(np.float32)
    gs = [rng.standard_normal((7, 3)).astype(np.float32) for _ in range(4)]
    p_host, p_dev = p0.copy(), dev(p0.copy())
    o_host, o_dev = make(), make()
    for g in gs:
        o_host.apply_gradients([(g, p_host)])
        o_dev.apply_gradients([(dev(g), p_dev)])
    np.testing.assert_allclose(dev.host(p_dev), p_host, rtol=1e-5, atol=1e-6)
    it, state = o_dev.get_state([p_dev])
    o3 = make()
    o3.set_state([p_dev], it, state)
    assert o3.iterations == 4
