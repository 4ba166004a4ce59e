import './app.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { applyTheme, rememberedTheme } from './lib/theme';

// The theme last chosen on this machine, until the signed-in user's preferences say otherwise.
applyTheme(rememberedTheme());

const target = document.getElementById('app');
if (!target) throw new Error('no #app element');
mount(App, { target });
